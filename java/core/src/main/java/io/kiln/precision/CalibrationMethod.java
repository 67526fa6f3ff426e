package io.kiln.precision;

import io.kiln.InvalidInputException;
import java.util.Locale;

/** How an activation's clipping range (amax) is chosen from the observed values. */
public enum CalibrationMethod {
  /** The largest |x| seen. */
  MAX,
  /** The given percentile of |x| (default 99.99) from a 2048-bin histogram. */
  PERCENTILE,
  /** The range whose 128-level quantization loses the least information (KL divergence). */
  ENTROPY,
  /** The range with the least mean squared quantization error over a grid of candidates. */
  MSE;

  public String id() {
    return name().toLowerCase(Locale.ROOT);
  }

  public static CalibrationMethod parse(String s) {
    try {
      return valueOf(s.trim().toUpperCase(Locale.ROOT));
    } catch (IllegalArgumentException e) {
      throw new InvalidInputException(
          "unknown calibration method '" + s + "' (max, percentile, entropy, mse)");
    }
  }
}
