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
    if (params.isPlainArgmax()) {
      return argmax(logits);
    }
    Candidates candidates = candidates(logits, history, historyLength);
    if (candidates == null) {
      return argmax(penalized(logits, history, historyLength));
    }
    double u = random.nextDouble() * candidates.sum;
    for (int i = 0; i < candidates.keep; i++) {
      u -= candidates.weights[i];
      if (u < 0) {
        return candidates.order[i];
      }
    }
    return candidates.order[candidates.keep - 1];
  }

  /**
   * The distribution {@link #sample} draws from, over the whole vocabulary: one-hot on the greedy
   * token when greedy, otherwise the tempered, top-k and top-p filtered softmax.
   */
  public double[] distribution(float[] logits, int[] history, int historyLength) {
    double[] probabilities = new double[logits.length];
    Candidates candidates = params.isGreedy() ? null : candidates(logits, history, historyLength);
    if (candidates == null) {
      probabilities[sample(logits, history, historyLength)] = 1;
      return probabilities;
    }
    for (int i = 0; i < candidates.keep; i++) {
      probabilities[candidates.order[i]] = candidates.weights[i] / candidates.sum;
    }
    return probabilities;
  }

  /** Draws a token from {@code weights} (non-negative, any positive sum) with this stream. */
  public int draw(double[] weights) {
    double sum = 0;
    int last = -1;
    for (int i = 0; i < weights.length; i++) {
      sum += weights[i];
      if (weights[i] > 0) {
        last = i;
      }
    }
    if (last < 0) {
      throw new IllegalArgumentException("no token has a positive weight");
    }
    double u = random.nextDouble() * sum;
    for (int i = 0; i < weights.length; i++) {
      u -= weights[i];
      if (u < 0) {
        return i;
      }
    }
    return last;
  }

  /** A uniform draw in [0, 1) from this stream (for accepting speculated tokens). */
  public double uniform() {
    return random.nextDouble();
  }

  /** Tokens by descending score with their unnormalized weights, the first {@code keep} kept. */
  private record Candidates(int[] order, double[] weights, int keep, double sum) {}

  /** Null when greedy: the penalized argmax decides alone. */
  private Candidates candidates(float[] logits, int[] history, int historyLength) {
    if (params.isGreedy()) {
      return null;
    }
    double[] scores = penalized(logits, history, historyLength);
    int[] order = descendingOrder(scores);
    int keep = params.topK() > 0 ? Math.min(params.topK(), order.length) : order.length;
    double max = scores[order[0]];
    double[] weights = new double[keep];
    double sum = 0;
    for (int i = 0; i < keep; i++) {
      weights[i] = Math.exp((scores[order[i]] - max) / params.temperature());
      sum += weights[i];
    }
    if (params.topP() < 1) {
      double cumulative = 0;
      int cut = keep;
      for (int i = 0; i < keep; i++) {
        cumulative += weights[i] / sum;
        if (cumulative >= params.topP()) {
          cut = i + 1;
          break;
        }
      }
      keep = cut;
      sum = 0;
      for (int i = 0; i < keep; i++) {
        sum += weights[i];
      }
    }
    return new Candidates(order, weights, keep, sum);
  }

  private double[] penalized(float[] logits, int[] history, int historyLength) {
    double[] scores = new double[logits.length];
    for (int i = 0; i < logits.length; i++) {
      scores[i] = logits[i];
    }
    if (params.repetitionPenalty() != 1) {
      applyRepetitionPenalty(scores, history, historyLength, params.repetitionPenalty());
    }
    return scores;
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
