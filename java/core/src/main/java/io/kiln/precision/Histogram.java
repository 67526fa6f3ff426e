package io.kiln.precision;

/**
 * Counts of |x| in equal bins over {@code [0, range]}; values past the range land in the last bin.
 */
public final class Histogram {
  public static final int BINS = 2048;

  private final double[] counts = new double[BINS];
  private final float range;

  public Histogram(float range) {
    this.range = range;
  }

  public void add(float[] values) {
    if (range <= 0) {
      counts[0] += values.length;
      return;
    }
    double scale = BINS / (double) range;
    for (float v : values) {
      int b = (int) (Math.abs(v) * scale);
      counts[b >= BINS ? BINS - 1 : b]++;
    }
  }

  public float range() {
    return range;
  }

  public double binWidth() {
    return range / (double) BINS;
  }

  public double[] counts() {
    return counts.clone();
  }

  /** The upper edge of the bin where the cumulative count first reaches {@code percentile}%. */
  public float percentile(double percentile) {
    double total = 0;
    for (double c : counts) {
      total += c;
    }
    double target = total * percentile / 100.0;
    double cum = 0;
    for (int i = 0; i < BINS; i++) {
      cum += counts[i];
      if (cum >= target) {
        return (float) ((i + 1) * binWidth());
      }
    }
    return range;
  }

  /**
   * The clipping range minimizing KL(P || Q), where P is the distribution cut at bin i (the clipped
   * tail folded into its last bin) and Q is P's bins merged into 128 levels and spread back over
   * the bins that were non-empty. The search starts at bin 128.
   */
  public float entropy() {
    final int levels = 128;
    double bestKl = Double.POSITIVE_INFINITY;
    int best = BINS;
    double[] tail = new double[BINS + 1];
    for (int i = BINS - 1; i >= 0; i--) {
      tail[i] = tail[i + 1] + counts[i];
    }
    double[] p = new double[BINS];
    double[] q = new double[BINS];
    for (int i = levels; i <= BINS; i++) {
      System.arraycopy(counts, 0, p, 0, i);
      p[i - 1] += tail[i];
      java.util.Arrays.fill(q, 0, i, 0);
      for (int j = 0; j < levels; j++) {
        int start = (int) ((long) j * i / levels);
        int end = (int) ((long) (j + 1) * i / levels);
        double sum = 0;
        int nonEmpty = 0;
        for (int k = start; k < end; k++) {
          sum += counts[k];
          if (counts[k] != 0) {
            nonEmpty++;
          }
        }
        if (nonEmpty > 0) {
          double share = sum / nonEmpty;
          for (int k = start; k < end; k++) {
            if (counts[k] != 0) {
              q[k] = share;
            }
          }
        }
      }
      double kl = divergence(p, q, i);
      if (kl < bestKl) {
        bestKl = kl;
        best = i;
      }
    }
    return (float) (best * binWidth());
  }

  private static double divergence(double[] p, double[] q, int n) {
    double ps = 0;
    double qs = 0;
    for (int k = 0; k < n; k++) {
      ps += p[k];
      qs += q[k];
    }
    if (ps == 0 || qs == 0) {
      return Double.POSITIVE_INFINITY;
    }
    double kl = 0;
    for (int k = 0; k < n; k++) {
      if (p[k] > 0) {
        double pk = p[k] / ps;
        // A bin Q left empty (the folded tail) gets a small floor instead of an infinite cost.
        double qk = Math.max(q[k] / qs, 1e-12);
        kl += pk * Math.log(pk / qk);
      }
    }
    return kl;
  }

  /**
   * The clipping range with the least expected squared error of symmetric int8 quantization,
   * evaluated at bin centres, over candidates at every 8th bin edge from bin 64 up.
   */
  public float mse() {
    double width = binWidth();
    double bestErr = Double.POSITIVE_INFINITY;
    int best = BINS;
    for (int i = 64; i <= BINS; i += 8) {
      double amax = i * width;
      double scale = amax / 127.0;
      double err = 0;
      for (int b = 0; b < BINS; b++) {
        if (counts[b] == 0) {
          continue;
        }
        double x = (b + 0.5) * width;
        double q = Math.min(Math.rint(x / scale), 127) * scale;
        err += counts[b] * (x - q) * (x - q);
      }
      if (err < bestErr) {
        bestErr = err;
        best = i;
      }
    }
    return (float) (best * width);
  }
}
