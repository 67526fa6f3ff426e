package io.kiln.precision;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import org.junit.jupiter.api.Test;

class HistogramTest {
  private static float[] gaussianWithOutliers(int n, long seed) {
    Random r = new Random(seed);
    float[] v = new float[n];
    for (int i = 0; i < n; i++) {
      v[i] = (float) r.nextGaussian();
    }
    v[0] = 40f; // one far outlier sets the histogram range
    return v;
  }

  @Test
  void percentileCutsTheTail() {
    Histogram h = new Histogram(40f);
    h.add(gaussianWithOutliers(200_000, 1));
    // 99.99% of |N(0,1)| lies below ~3.9.
    float p = h.percentile(99.99);
    assertTrue(p > 3.5 && p < 4.4, "p99.99 = " + p);
    assertEquals(40f, h.percentile(100), 1e-3);
    float p50 = h.percentile(50);
    assertTrue(p50 > 0.6 && p50 < 0.75, "median |x| = " + p50);
  }

  @Test
  void entropyClipsTheOutlierButKeepsTheBulk() {
    Histogram h = new Histogram(40f);
    h.add(gaussianWithOutliers(200_000, 2));
    float kl = h.entropy();
    assertTrue(kl > 2.0 && kl < 10, "entropy amax " + kl);
  }

  @Test
  void mseWeighsRoundingAgainstClipping() {
    float[] v = gaussianWithOutliers(200_000, 4);
    v[0] = 0;
    float max = 0;
    for (float x : v) {
      max = Math.max(max, Math.abs(x));
    }
    Histogram h = new Histogram(max);
    h.add(v);
    float mse = h.mse();
    assertTrue(mse > 2.5 && mse < max, "mse amax " + mse + " of max " + max);
    // One far outlier costs more squared error than coarser rounding of the bulk: range widens.
    Histogram wide = new Histogram(40f);
    wide.add(gaussianWithOutliers(200_000, 4));
    assertTrue(wide.mse() > 10, "mse amax with outlier " + wide.mse());
  }

  @Test
  void uniformDataKeepsItsFullRange() {
    Histogram h = new Histogram(1f);
    float[] v = new float[100_000];
    Random r = new Random(3);
    for (int i = 0; i < v.length; i++) {
      v[i] = r.nextFloat() * 2 - 1;
    }
    h.add(v);
    assertTrue(h.entropy() > 0.9f, "entropy amax " + h.entropy());
    assertTrue(h.mse() > 0.9f, "mse amax " + h.mse());
  }
}
