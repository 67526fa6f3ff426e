package io.kiln.execution.llm;

import io.kiln.InvalidInputException;

/**
 * The paged KV pool a runner owns: {@code numBlocks} blocks of {@code blockSize} positions each,
 * the null block included. Block 0 is that reserved null block: never written for real tokens,
 * padding may point at it. Callers size pools in usable blocks through {@link #ofUsableBlocks}, so
 * only the pool, its runner and the engine ever count the null block.
 */
public record KvPoolSpec(int numBlocks, int blockSize) {
  /** A pool whose sequences can use {@code usableBlocks} blocks; the null block is added here. */
  public static KvPoolSpec ofUsableBlocks(int usableBlocks, int blockSize) {
    if (usableBlocks < 1 || usableBlocks == Integer.MAX_VALUE) {
      throw new InvalidInputException(
          "a KV pool needs between 1 and "
              + (Integer.MAX_VALUE - 1)
              + " usable blocks, got "
              + usableBlocks);
    }
    if (blockSize < 1) {
      throw new InvalidInputException("KV block size must be >= 1, got " + blockSize);
    }
    return new KvPoolSpec(usableBlocks + 1, blockSize);
  }

  /** Blocks sequences can hold: the pool minus the null block. */
  public int usableBlocks() {
    return numBlocks - 1;
  }
}
