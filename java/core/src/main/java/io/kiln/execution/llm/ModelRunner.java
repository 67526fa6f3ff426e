package io.kiln.execution.llm;

import java.util.List;

/**
 * Computes next-token logits for a batch of chunks over a paged KV pool the runner owns. Shared
 * (prefix-cached) blocks are only ever full blocks and are read, never rewritten. Thread-confined.
 */
public interface ModelRunner extends AutoCloseable {
  ModelSpec spec();

  KvPoolSpec kvPool();

  /**
   * Returns, per chunk in order, the logits of its last {@code numLogits} positions as one {@code
   * float[numLogits * vocab]} (position-major); null for chunks with no logits.
   */
  float[][] forward(List<SequenceChunk> batch);

  /** What {@link #forwardGreedy} returns for a position whose logits were not all finite. */
  int NON_FINITE = -2;

  /**
   * Optionally, the same step but returning only the greedy token of each of a chunk's last {@code
   * numLogits} positions (ties to the lower id; {@link #NON_FINITE} where a logit was NaN or
   * infinite; an empty array for chunks with no logits), chosen where the logits are computed so
   * that they need not travel. Null when the runner has no such path.
   */
  default int[][] forwardGreedy(List<SequenceChunk> batch) {
    return null;
  }

  @Override
  void close();
}
