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
   * Returns one {@code float[vocab]} per chunk with {@code wantLogits} (the logits of the chunk's
   * last position), in order; null entries for the others.
   */
  float[][] forward(List<SequenceChunk> batch);

  /** What {@link #forwardGreedy} returns for a chunk whose logits were not all finite. */
  int NON_FINITE = -2;

  /**
   * Optionally, the same step but returning only the greedy next token of each chunk with {@code
   * wantLogits} (ties to the lower id; -1 for the other chunks; {@link #NON_FINITE} where a logit
   * was NaN or infinite), chosen where the logits are computed so that they need not travel. Null
   * when the runner has no such path.
   */
  default int[] forwardGreedy(List<SequenceChunk> batch) {
    return null;
  }

  @Override
  void close();
}
