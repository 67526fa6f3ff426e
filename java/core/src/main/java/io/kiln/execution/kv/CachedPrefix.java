package io.kiln.execution.kv;

import java.util.List;

/**
 * The leading full blocks of a token sequence whose K/V the pool already holds. Valid only until
 * the block manager next changes.
 */
public final class CachedPrefix {
  static final CachedPrefix NONE = new CachedPrefix(List.of(), List.of(), 0);

  final List<KvBlock> blocks;
  final List<BlockHash> hashes;
  private final int numTokens;

  CachedPrefix(List<KvBlock> blocks, List<BlockHash> hashes, int numTokens) {
    this.blocks = blocks;
    this.hashes = hashes;
    this.numTokens = numTokens;
  }

  /** Tokens whose K/V need not be computed again. */
  public int numTokens() {
    return numTokens;
  }

  public int numBlocks() {
    return blocks.size();
  }
}
