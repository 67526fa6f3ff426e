package io.kiln.execution.kv;

import java.util.Arrays;

/**
 * Identity of a full block's contents: the hash of the block before it plus this block's tokens.
 * Equal hashes mean equal token prefixes (up to a 64-bit collision of the parent chain), so equal
 * K/V.
 */
final class BlockHash {
  private static final long ROOT = 0x6a09e667f3bcc908L;

  final long value;
  private final long parentValue;
  private final int[] tokens;

  private BlockHash(long parentValue, int[] tokens) {
    this.parentValue = parentValue;
    this.tokens = tokens;
    long h = mix(parentValue ^ 0x9e3779b97f4a7c15L);
    for (int token : tokens) {
      h = mix(h ^ (token & 0xffffffffL));
    }
    this.value = h;
  }

  /**
   * Hash of {@code tokens[from, from + blockSize)} following {@code parent} (null for the first).
   */
  static BlockHash of(BlockHash parent, int[] tokens, int from, int blockSize) {
    return new BlockHash(
        parent == null ? ROOT : parent.value, Arrays.copyOfRange(tokens, from, from + blockSize));
  }

  private static long mix(long z) {
    z = (z ^ (z >>> 30)) * 0xbf58476d1ce4e5b9L;
    z = (z ^ (z >>> 27)) * 0x94d049bb133111ebL;
    return z ^ (z >>> 31);
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof BlockHash other
        && value == other.value
        && parentValue == other.parentValue
        && Arrays.equals(tokens, other.tokens);
  }

  @Override
  public int hashCode() {
    return Long.hashCode(value);
  }
}
