package io.kiln;

import java.util.Locale;

/** The arithmetic a model runs in: the one precision type of sessions, engines and commands. */
public enum Precision {
  FP32,
  FP16,
  INT8;

  /** {@code fp32}, {@code fp16} or {@code int8}, in any case. */
  public static Precision parse(String text) {
    try {
      return valueOf(text.trim().toUpperCase(Locale.ROOT));
    } catch (IllegalArgumentException | NullPointerException e) {
      throw new InvalidInputException("unknown precision '" + text + "' (fp32, fp16 or int8)");
    }
  }

  /** The lower-case name used on the command line and in reports. */
  public String label() {
    return name().toLowerCase(Locale.ROOT);
  }
}
