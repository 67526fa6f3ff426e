package io.kiln.model.llama;

/**
 * How rotary frequencies are rescaled for long contexts: none ({@code default}), {@code linear}
 * (positions divided by {@code factor}) or {@code llama3} (low frequencies divided by {@code
 * factor}, a smooth blend between {@code lowFreqFactor} and {@code highFreqFactor}).
 */
public record RopeScaling(
    String type,
    double factor,
    double lowFreqFactor,
    double highFreqFactor,
    int originalMaxPositions) {

  public static final RopeScaling NONE = new RopeScaling("default", 1, 1, 1, 0);

  /** The rotary inverse frequencies of one head, {@code headDim / 2} of them. */
  public double[] inverseFrequencies(double theta, int headDim) {
    double[] inv = new double[headDim / 2];
    for (int i = 0; i < inv.length; i++) {
      inv[i] = 1.0 / Math.pow(theta, (2.0 * i) / headDim);
    }
    switch (type) {
      case "default":
        return inv;
      case "linear":
        for (int i = 0; i < inv.length; i++) {
          inv[i] /= factor;
        }
        return inv;
      case "llama3":
        return llama3(inv);
      default:
        throw new IllegalStateException(type);
    }
  }

  // Wavelengths longer than the original context are stretched by factor, shorter than
  // original/highFreqFactor kept, and the band between blends the two.
  private double[] llama3(double[] inv) {
    double lowFreqWavelen = originalMaxPositions / lowFreqFactor;
    double highFreqWavelen = originalMaxPositions / highFreqFactor;
    for (int i = 0; i < inv.length; i++) {
      double wavelen = 2 * Math.PI / inv[i];
      if (wavelen > lowFreqWavelen) {
        inv[i] = inv[i] / factor;
      } else if (wavelen >= highFreqWavelen) {
        double smooth =
            (originalMaxPositions / wavelen - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
        inv[i] = (1 - smooth) * inv[i] / factor + smooth * inv[i];
      }
    }
    return inv;
  }
}
