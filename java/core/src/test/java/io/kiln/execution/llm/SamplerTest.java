package io.kiln.execution.llm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.kiln.InvalidInputException;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class SamplerTest {
  private static float[] randomLogits(long seed, int vocab) {
    SplittableRandom rnd = new SplittableRandom(seed);
    float[] l = new float[vocab];
    for (int i = 0; i < vocab; i++) {
      l[i] = (float) (rnd.nextGaussian() * 2);
    }
    return l;
  }

  private static int argmax(float[] l) {
    int best = 0;
    for (int i = 1; i < l.length; i++) {
      if (l[i] > l[best]) {
        best = i;
      }
    }
    return best;
  }

  private static SamplingParams.Builder base() {
    return SamplingParams.builder().maxNewTokens(8);
  }

  @Test
  void greedyIsTheArgmaxAndTopKOneOrTinyTopPAreToo() {
    for (long seed = 0; seed < 50; seed++) {
      float[] logits = randomLogits(seed, 100);
      int best = argmax(logits);
      assertEquals(best, new Sampler(SamplingParams.greedy(1)).sample(logits, new int[0], 0));
      assertEquals(
          best, new Sampler(base().topK(1).seed(seed).build()).sample(logits, new int[0], 0));
      assertEquals(
          best,
          new Sampler(base().topP(1e-6).temperature(2).seed(seed).build())
              .sample(logits, new int[0], 0));
    }
  }

  @Test
  void temperatureOneSamplesTheSoftmax() {
    float[] logits = {1.0f, 0.0f, -1.0f, 2.0f, 0.5f};
    double[] p = new double[logits.length];
    double sum = 0;
    for (int i = 0; i < p.length; i++) {
      sum += p[i] = Math.exp(logits[i]);
    }
    Sampler sampler = new Sampler(base().seed(11).build());
    int n = 200_000;
    int[] counts = new int[logits.length];
    for (int i = 0; i < n; i++) {
      counts[sampler.sample(logits, new int[0], 0)]++;
    }
    for (int i = 0; i < p.length; i++) {
      double expected = p[i] / sum;
      double sd = Math.sqrt(expected * (1 - expected) / n);
      assertEquals(expected, counts[i] / (double) n, 5 * sd, "token " + i);
    }
  }

  @Test
  void topKAndTopPKeepOnlyTheHead() {
    float[] logits = {3.0f, 2.9f, 2.8f, -5f, -5f, -5f, -5f, 2.7f};
    Sampler topK = new Sampler(base().topK(3).temperature(5).seed(1).build());
    boolean[] seen = new boolean[logits.length];
    for (int i = 0; i < 20_000; i++) {
      seen[topK.sample(logits, new int[0], 0)] = true;
    }
    assertArrayEquals(new boolean[] {true, true, true, false, false, false, false, false}, seen);

    // Probabilities about .27 .25 .22 .20 (and tiny): top-p .5 keeps exactly the first two.
    Sampler topP = new Sampler(base().topP(0.5).seed(2).build());
    seen = new boolean[logits.length];
    for (int i = 0; i < 20_000; i++) {
      seen[topP.sample(logits, new int[0], 0)] = true;
    }
    assertArrayEquals(new boolean[] {true, true, false, false, false, false, false, false}, seen);
  }

  @Test
  void repetitionPenaltyPushesSeenTokensDown() {
    float[] logits = {2.0f, 1.9f, -1.0f};
    int[] history = {0, 0, 2};
    assertEquals(0, new Sampler(SamplingParams.greedy(1)).sample(logits, history, 3));
    SamplingParams penalised = base().temperature(0).repetitionPenalty(1.2).build();
    assertEquals(1, new Sampler(penalised).sample(logits, history, 3));
    double[] scores = {2.0, 1.9, -1.0};
    Sampler.applyRepetitionPenalty(scores, history, 3, 2.0);
    assertArrayEquals(new double[] {1.0, 1.9, -2.0}, scores);
    // Only the first historyLength tokens count.
    assertEquals(0, new Sampler(penalised).sample(logits, history, 0));
  }

  @Test
  void sameSeedSameDrawsOtherSeedOtherDraws() {
    float[] logits = randomLogits(3, 64);
    int[] a = new int[40];
    int[] b = new int[40];
    int[] c = new int[40];
    Sampler sa = new Sampler(base().seed(5).build());
    Sampler sb = new Sampler(base().seed(5).build());
    Sampler sc = new Sampler(base().seed(6).build());
    for (int i = 0; i < 40; i++) {
      a[i] = sa.sample(logits, new int[0], 0);
      b[i] = sb.sample(logits, new int[0], 0);
      c[i] = sc.sample(logits, new int[0], 0);
    }
    assertArrayEquals(a, b);
    assertFalse(java.util.Arrays.equals(a, c));
  }

  @Test
  void invalidParametersAreTypedErrors() {
    SamplingParams[] bad = {
      base().temperature(-0.1).build(),
      base().temperature(Double.NaN).build(),
      base().temperature(Double.POSITIVE_INFINITY).build(),
      base().topK(-1).build(),
      base().topP(0).build(),
      base().topP(1.01).build(),
      base().topP(Double.NaN).build(),
      base().repetitionPenalty(0).build(),
      base().maxNewTokens(0).build(),
      base().stopTokenIds(100).build(),
      base().stopTokenIds(-1).build(),
    };
    for (SamplingParams p : bad) {
      InvalidInputException e =
          assertThrows(InvalidInputException.class, () -> p.validate(100), p.toString());
      assertTrue(e.getMessage().length() > 10);
    }
    base().topP(1).topK(0).temperature(0).stopTokenIds(99).build().validate(100);
  }

  @Test
  void descendingOrderSortsByScoreThenId() {
    SplittableRandom rnd = new SplittableRandom(8);
    for (int trial = 0; trial < 200; trial++) {
      int n = 1 + rnd.nextInt(300);
      double[] scores = new double[n];
      for (int i = 0; i < n; i++) {
        // Few distinct values, both signs, zeros of both signs and infinities: many ties.
        int pick = rnd.nextInt(8);
        scores[i] =
            pick == 0
                ? -0.0
                : pick == 1
                    ? 0.0
                    : pick == 2
                        ? Double.NEGATIVE_INFINITY
                        : pick == 3 ? Double.POSITIVE_INFINITY : (float) (rnd.nextInt(9) - 4) / 3;
      }
      Integer[] expected = new Integer[n];
      for (int i = 0; i < n; i++) {
        expected[i] = i;
      }
      java.util.Arrays.sort(
          expected,
          (a, b) ->
              scores[a] != scores[b] || Double.compare(scores[a], scores[b]) != 0
                  ? Double.compare(scores[b], scores[a])
                  : a - b);
      int[] want = java.util.Arrays.stream(expected).mapToInt(Integer::intValue).toArray();
      assertArrayEquals(want, Sampler.descendingOrder(scores), "trial " + trial);
    }
  }
}
