package io.kiln.execution.llm;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Rejection sampling keeps the target's distribution: over many seeds, the first tokens sampled
 * with speculation follow the target model's own distribution (chi-square), with temperature, top-k
 * and top-p applied to both models. The same statistic against the draft's distribution, which is
 * what skipping the rejection step gives, is far past the critical value, so the test can tell them
 * apart.
 */
@Timeout(120)
class SpeculativeSamplingTest {
  private static final int VOCAB = 8;
  private static final int SEEDS = 12_000;
  private static final int[] PROMPT = {1, 2, 1, 2, 1, 2, 1};

  @ParameterizedTest
  @CsvSource({"draft, 1.0, 0, 1.0", "draft, 0.7, 5, 0.9", "ngram, 1.0, 0, 1.0"})
  void speculatedTokensFollowTheTargetDistribution(
      String method, double temperature, int topK, double topP) throws Exception {
    SamplingParams base =
        SamplingParams.builder().temperature(temperature).topK(topK).topP(topP).build();
    ToyModelRunner target = new ToyModelRunner(VOCAB, 64, 2048, 4, -1);
    ToyModelRunner draft =
        method.equals("draft") ? new ToyModelRunner(VOCAB, 64, 2048, 4, -1, 9) : null;
    SpeculativeConfig config =
        draft != null ? SpeculativeConfig.draft(3) : SpeculativeConfig.ngram(3).withNgram(1, 2);
    long[][] pairs = new long[VOCAB][VOCAB];
    long[] third = new long[VOCAB];
    long proposed;
    try (LlmEngine engine =
        new LlmEngine(target, new SchedulerConfig(64, 512, 0, false), config, draft)) {
      List<GenerationHandle> handles = new ArrayList<>();
      for (int seed = 0; seed < SEEDS; seed++) {
        SamplingParams p =
            SamplingParams.builder()
                .temperature(temperature)
                .topK(topK)
                .topP(topP)
                .seed(seed)
                .maxNewTokens(4)
                .build();
        handles.add(engine.submit(PROMPT, p, e -> {}));
      }
      for (GenerationHandle h : handles) {
        int[] t = h.result().get(60, TimeUnit.SECONDS).newTokenIds();
        pairs[t[0]][t[1]]++;
        third[t[2]]++;
      }
      proposed = engine.stats().speculativeProposed();
    }
    assertTrue(proposed > SEEDS / 5, "speculation proposed only " + proposed + " tokens");

    Distributions exact = new Distributions(new ToyModelRunner(VOCAB, 64, 64, 4, -1), base);
    double[][] expectedPairs = exact.pairs();
    double pairStat = chiSquare(flatten(pairs), flatten(expectedPairs));
    double thirdStat = chiSquare(toDouble(third), exact.third(expectedPairs));
    assertTrue(pairStat < criticalValue(flatten(expectedPairs)), "(t0, t1) chi-square " + pairStat);
    assertTrue(thirdStat < criticalValue(exact.third(expectedPairs)), "t2 chi-square " + thirdStat);

    if (draft != null) {
      // Always accepting the draft's token would make t1 follow the draft model instead.
      Distributions drafted = new Distributions(new ToyModelRunner(VOCAB, 64, 64, 4, -1, 9), base);
      double[][] skipped = new double[VOCAB][];
      for (int t0 = 0; t0 < VOCAB; t0++) {
        double[] q = drafted.next(new int[] {t0});
        skipped[t0] = new double[VOCAB];
        for (int t1 = 0; t1 < VOCAB; t1++) {
          skipped[t0][t1] =
              expectedPairs[t0][t1] == 0 && q[t1] == 0 ? 0 : rowSum(expectedPairs[t0]) * q[t1];
        }
      }
      double wrong = chiSquare(flatten(pairs), flatten(skipped));
      assertTrue(
          wrong > 10 * criticalValue(flatten(skipped)),
          "the draft's distribution is too close to the target's to tell apart: " + wrong);
    }
  }

  /** The target's exact next-token distributions after the prompt, by direct forward passes. */
  private static final class Distributions {
    private final ToyModelRunner runner;
    private final Sampler sampler;

    Distributions(ToyModelRunner runner, SamplingParams params) {
      this.runner = runner;
      this.sampler = new Sampler(params);
    }

    /** The distribution after the prompt and {@code generated}. */
    double[] next(int[] generated) {
      int[] tokens = java.util.Arrays.copyOf(PROMPT, PROMPT.length + generated.length);
      System.arraycopy(generated, 0, tokens, PROMPT.length, generated.length);
      int[] table = new int[(tokens.length + 3) / 4];
      for (int i = 0; i < table.length; i++) {
        table[i] = i + 1;
      }
      float[] logits = runner.forward(List.of(new SequenceChunk(1, tokens, 0, table, 1)))[0];
      return sampler.distribution(logits, tokens, tokens.length);
    }

    double[][] pairs() {
      double[] first = next(new int[0]);
      double[][] expected = new double[VOCAB][VOCAB];
      for (int t0 = 0; t0 < VOCAB; t0++) {
        if (first[t0] == 0) {
          continue;
        }
        double[] second = next(new int[] {t0});
        for (int t1 = 0; t1 < VOCAB; t1++) {
          expected[t0][t1] = SEEDS * first[t0] * second[t1];
        }
      }
      return expected;
    }

    double[] third(double[][] pairs) {
      double[] expected = new double[VOCAB];
      for (int t0 = 0; t0 < VOCAB; t0++) {
        for (int t1 = 0; t1 < VOCAB; t1++) {
          if (pairs[t0][t1] > 0) {
            double[] p = next(new int[] {t0, t1});
            for (int t2 = 0; t2 < VOCAB; t2++) {
              expected[t2] += pairs[t0][t1] * p[t2];
            }
          }
        }
      }
      return expected;
    }
  }

  /**
   * Pearson's statistic; cells expecting fewer than 5 are pooled into one. A count in a cell the
   * target gives no probability at all is an outright failure.
   */
  static double chiSquare(double[] observed, double[] expected) {
    double stat = 0;
    double pooledObserved = 0;
    double pooledExpected = 0;
    for (int i = 0; i < observed.length; i++) {
      if (expected[i] == 0) {
        if (observed[i] > 0) {
          return Double.POSITIVE_INFINITY;
        }
      } else if (expected[i] < 5) {
        pooledObserved += observed[i];
        pooledExpected += expected[i];
      } else {
        stat += sq(observed[i] - expected[i]) / expected[i];
      }
    }
    if (pooledExpected > 0) {
      stat += sq(pooledObserved - pooledExpected) / pooledExpected;
    }
    return stat;
  }

  /** The 1e-4 critical value for the cells {@link #chiSquare} uses (Wilson-Hilferty). */
  static double criticalValue(double[] expected) {
    int cells = 0;
    boolean pooled = false;
    for (double e : expected) {
      if (e >= 5) {
        cells++;
      } else if (e > 0) {
        pooled = true;
      }
    }
    int df = Math.max(1, cells + (pooled ? 1 : 0) - 1);
    double z = 3.719; // upper 1e-4 quantile of the standard normal
    double a = 2.0 / (9 * df);
    return df * Math.pow(1 - a + z * Math.sqrt(a), 3);
  }

  private static double sq(double x) {
    return x * x;
  }

  private static double rowSum(double[] row) {
    double s = 0;
    for (double v : row) {
      s += v;
    }
    return s;
  }

  private static double[] flatten(long[][] counts) {
    double[] out = new double[VOCAB * VOCAB];
    for (int i = 0; i < VOCAB; i++) {
      for (int j = 0; j < VOCAB; j++) {
        out[i * VOCAB + j] = counts[i][j];
      }
    }
    return out;
  }

  private static double[] flatten(double[][] values) {
    double[] out = new double[VOCAB * VOCAB];
    for (int i = 0; i < VOCAB; i++) {
      System.arraycopy(values[i], 0, out, i * VOCAB, VOCAB);
    }
    return out;
  }

  private static double[] toDouble(long[] counts) {
    double[] out = new double[counts.length];
    for (int i = 0; i < counts.length; i++) {
      out[i] = counts[i];
    }
    return out;
  }
}
