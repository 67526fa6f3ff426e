package io.kiln.engine.trt;

import io.kiln.InvalidInputException;
import java.util.Locale;

/** The arithmetic an engine is built for. */
public enum Precision {
  FP32,
  FP16,
  INT8;

  public static Precision parse(String s) {
    try {
      return valueOf(s.trim().toUpperCase(Locale.ROOT));
    } catch (IllegalArgumentException e) {
      throw new InvalidInputException("unknown precision '" + s + "' (fp32, fp16 or int8)");
    }
  }

  public String label() {
    return name().toLowerCase(Locale.ROOT);
  }
}
