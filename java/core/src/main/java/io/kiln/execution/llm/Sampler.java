package io.kiln.execution.llm;

import java.util.SplittableRandom;

/**
 * Picks one request's next tokens from logits. Owns the request's random stream, so its draws do
 * not depend on what else shares the batch or on recomputation after preemption.
 */
public final class Sampler {
  private final SamplingParams params;
  private final SplittableRandom random;

  public Sampler(SamplingParams params) {
    this.params = params;
    this.random = new SplittableRandom(params.seed());
  }

  /**
   * @param history the prompt and the tokens generated so far (for the repetition penalty)
   */
  public int sample(float[] logits, int[] history, int historyLength) {
    if (params.isGreedy() && params.repetitionPenalty() == 1) {
      return argmax(logits);
    }
    double[] scores = new double[logits.length];
    for (int i = 0; i < logits.length; i++) {
      scores[i] = logits[i];
    }
    if (params.repetitionPenalty() != 1) {
      applyRepetitionPenalty(scores, history, historyLength, params.repetitionPenalty());
    }
    if (params.isGreedy()) {
      return argmax(scores);
    }
    int[] order = descendingOrder(scores);
    int keep = params.topK() > 0 ? Math.min(params.topK(), order.length) : order.length;
    double max = scores[order[0]];
    double[] probs = new double[keep];
    double sum = 0;
    for (int i = 0; i < keep; i++) {
      probs[i] = Math.exp((scores[order[i]] - max) / params.temperature());
      sum += probs[i];
    }
    if (params.topP() < 1) {
      double cumulative = 0;
      int cut = keep;
      for (int i = 0; i < keep; i++) {
        cumulative += probs[i] / sum;
        if (cumulative >= params.topP()) {
          cut = i + 1;
          break;
        }
      }
      keep = cut;
      sum = 0;
      for (int i = 0; i < keep; i++) {
        sum += probs[i];
      }
    }
    double u = random.nextDouble() * sum;
    for (int i = 0; i < keep; i++) {
      u -= probs[i];
      if (u < 0) {
        return order[i];
      }
    }
    return order[keep - 1];
  }

  /**
   * Token ids by descending score, ties to the lower id: a fixed order keeps seeded draws
   * reproducible. Sorts (score, id) packed into longs, which is much faster than boxed indices.
   */
  static int[] descendingOrder(double[] scores) {
    long[] keys = new long[scores.length];
    for (int i = 0; i < scores.length; i++) {
      int bits = Float.floatToIntBits((float) scores[i]);
      int ascending = bits < 0 ? ~bits : bits | Integer.MIN_VALUE; // unsigned order of floats
      int descending = ~ascending ^ Integer.MIN_VALUE; // signed order of the unsigned value
      keys[i] = ((long) descending << 32) | i;
    }
    java.util.Arrays.sort(keys);
    int[] order = new int[scores.length];
    for (int i = 0; i < order.length; i++) {
      order[i] = (int) keys[i];
    }
    return order;
  }

  static void applyRepetitionPenalty(double[] scores, int[] history, int length, double penalty) {
    boolean[] seen = new boolean[scores.length];
    for (int i = 0; i < length; i++) {
      int t = history[i];
      if (t >= 0 && t < scores.length && !seen[t]) {
        seen[t] = true;
        scores[t] = scores[t] > 0 ? scores[t] / penalty : scores[t] * penalty;
      }
    }
  }

  /** First index of the largest value (the float order equals the order of its doubles). */
  static int argmax(float[] scores) {
    int best = 0;
    for (int i = 1; i < scores.length; i++) {
      if (scores[i] > scores[best]) {
        best = i;
      }
    }
    return best;
  }

  static int argmax(double[] scores) {
    int best = 0;
    for (int i = 1; i < scores.length; i++) {
      if (scores[i] > scores[best]) {
        best = i;
      }
    }
    return best;
  }
}
