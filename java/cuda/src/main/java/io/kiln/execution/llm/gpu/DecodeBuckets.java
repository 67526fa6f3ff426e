package io.kiln.execution.llm.gpu;

import io.kiln.execution.llm.SpeculativeConfig;
import java.util.ArrayList;
import java.util.List;

/**
 * Decode batch sizes that get a captured graph: 1, 2, 4, 8, then steps of 8 up to the largest
 * batch. A batch runs in the smallest bucket that holds it, padded through the null block.
 */
final class DecodeBuckets {
  /** Most splits of a row's context in attention; sizes the partial-result buffers. */
  static final int MAX_SPLITS = 16;

  private DecodeBuckets() {}

  static int[] upTo(int maxNumSeqs) {
    List<Integer> sizes = new ArrayList<>();
    for (int b = 1; b <= Math.min(8, maxNumSeqs); b *= 2) {
      sizes.add(b);
    }
    for (int b = 16; b <= maxNumSeqs; b += 8) {
      sizes.add(b);
    }
    if (sizes.get(sizes.size() - 1) != maxNumSeqs) {
      sizes.add(maxNumSeqs);
    }
    return sizes.stream().mapToInt(Integer::intValue).toArray();
  }

  /** The smallest bucket of at least {@code batch}, or -1 if none. */
  static int bucketFor(int[] buckets, int batch) {
    for (int b : buckets) {
      if (b >= batch) {
        return b;
      }
    }
    return -1;
  }

  /**
   * Attention splits over the context for a decode batch: enough (kv head, row, split) blocks to
   * fill the multiprocessors about twice, at most {@code maxSplits}.
   */
  static int splitsFor(int batch, int numKvHeads, int multiprocessors, int maxSplits) {
    long blocks = (long) numKvHeads * batch;
    long wanted = (2L * multiprocessors + blocks - 1) / blocks;
    return (int) Math.max(1, Math.min(maxSplits, wanted));
  }

  /**
   * Query rows times splits that the attention's partial buffers hold for a runner of {@code
   * maxRows} sequences: {@link #MAX_SPLITS} per row, and at least a one-sequence verification's
   * rows (K + 1 <= 9), so that it splits as far whatever the batch limit.
   */
  static long splitCapacity(int maxRows) {
    return (long) Math.max(maxRows, 1 + SpeculativeConfig.MAX_TOKENS) * MAX_SPLITS;
  }

  /**
   * The splits of a step of {@code rows} query rows ({@link #splitsFor}) within {@code capacity}.
   */
  static int splitsWithin(int rows, int numKvHeads, int multiprocessors, long capacity) {
    int wanted = splitsFor(rows, numKvHeads, multiprocessors, MAX_SPLITS);
    return (int) Math.max(1, Math.min(wanted, capacity / rows));
  }
}
