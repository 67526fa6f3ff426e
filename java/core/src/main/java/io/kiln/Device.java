package io.kiln;

import java.util.Locale;

/** Where a session or an LLM runner computes. */
public enum Device {
  /** A CUDA device when one is usable, else the CPU; the choice is logged with its reason. */
  AUTO,
  CPU,
  CUDA;

  /** {@code auto}, {@code cpu} or {@code cuda} ({@code gpu} is taken for {@code cuda}). */
  public static Device parse(String text) {
    String name = text == null ? "" : text.trim().toLowerCase(Locale.ROOT);
    return switch (name) {
      case "auto" -> AUTO;
      case "cpu" -> CPU;
      case "cuda", "gpu" -> CUDA;
      default ->
          throw new InvalidInputException("unknown device '" + text + "' (auto, cpu or cuda)");
    };
  }

  public String label() {
    return name().toLowerCase(Locale.ROOT);
  }
}
