package io.kiln.execution.llm;

import java.util.ArrayList;
import java.util.List;

/**
 * A minimal greedy decoder over a runner for tests: each sequence owns a fixed run of blocks, the
 * prompt goes in chunks of {@code prefillChunk} tokens, then one token per step.
 */
final class GreedyLoop {
  private GreedyLoop() {}

  static int argmax(float[] logits) {
    int best = 0;
    for (int i = 1; i < logits.length; i++) {
      if (logits[i] > logits[best]) {
        best = i;
      }
    }
    return best;
  }

  /** Blocks {@code first, first+1, ...} enough for {@code positions}. */
  static int[] blocks(int first, int positions, int blockSize) {
    int[] table = new int[(positions + blockSize - 1) / blockSize];
    for (int i = 0; i < table.length; i++) {
      table[i] = first + i;
    }
    return table;
  }

  /**
   * Returns the logits after the prompt (index 0) and the generated tokens (index 1, as floats).
   */
  static Result run(
      ModelRunner runner, int[] prompt, int newTokens, int prefillChunk, int firstBlock) {
    int bs = runner.kvPool().blockSize();
    int[] table = blocks(firstBlock, prompt.length + newTokens, bs);
    float[] logits = null;
    for (int start = 0; start < prompt.length; start += prefillChunk) {
      int end = Math.min(prompt.length, start + prefillChunk);
      int[] chunk = java.util.Arrays.copyOfRange(prompt, start, end);
      logits =
          runner
              .forward(List.of(new SequenceChunk(7, chunk, start, table, end == prompt.length)))[0];
    }
    float[] promptLogits = logits;
    List<Integer> generated = new ArrayList<>();
    int position = prompt.length;
    while (true) {
      int next = argmax(logits);
      generated.add(next);
      if (generated.size() == newTokens) {
        break;
      }
      logits =
          runner
              .forward(List.of(new SequenceChunk(7, new int[] {next}, position++, table, true)))[0];
    }
    return new Result(promptLogits, generated.stream().mapToInt(Integer::intValue).toArray());
  }

  record Result(float[] promptLogits, int[] tokens) {}
}
