package io.kiln.execution.llm;

import java.util.Arrays;
import java.util.List;

/**
 * A CPU Llama runner with a token-only greedy path (as the CUDA runner has), counting which path
 * each step took and how many vocabulary-wide logit rows left the runner.
 */
final class CountingRunner implements ModelRunner {
  private final CpuLlamaRunner inner;
  private final int nonFiniteEvery;
  int logitSteps;
  int logitRows;
  int greedySteps;

  CountingRunner(CpuLlamaRunner inner) {
    this(inner, 0);
  }

  /**
   * @param nonFiniteEvery when positive, every such greedy step reports {@link #NON_FINITE} for all
   *     its rows, as the device argmax does for NaN logits
   */
  CountingRunner(CpuLlamaRunner inner, int nonFiniteEvery) {
    this.inner = inner;
    this.nonFiniteEvery = nonFiniteEvery;
  }

  @Override
  public ModelSpec spec() {
    return inner.spec();
  }

  @Override
  public KvPoolSpec kvPool() {
    return inner.kvPool();
  }

  @Override
  public float[][] forward(List<SequenceChunk> batch) {
    logitSteps++;
    for (SequenceChunk chunk : batch) {
      logitRows += chunk.numLogits();
    }
    return inner.forward(batch);
  }

  @Override
  public int[][] forwardGreedy(List<SequenceChunk> batch) {
    greedySteps++;
    boolean poisoned = nonFiniteEvery > 0 && greedySteps % nonFiniteEvery == 0;
    float[][] logits = inner.forward(batch);
    int vocab = inner.spec().vocabSize();
    int[][] tokens = new int[batch.size()][];
    for (int i = 0; i < tokens.length; i++) {
      tokens[i] = new int[batch.get(i).numLogits()];
      for (int row = 0; row < tokens[i].length; row++) {
        tokens[i][row] =
            poisoned
                ? NON_FINITE
                : GreedyLoop.argmax(Arrays.copyOfRange(logits[i], row * vocab, (row + 1) * vocab));
      }
    }
    return tokens;
  }

  @Override
  public void close() {
    inner.close();
  }
}
