package io.kiln;

import java.util.Locale;

/** Which runtime executes a model. */
public enum Backend {
  /** TensorRT when a CUDA device and its libraries are usable, else ONNX Runtime on the CPU. */
  AUTO,
  TENSORRT,
  ONNXRUNTIME;

  public static Backend parse(String text) {
    try {
      return valueOf(text.trim().toUpperCase(Locale.ROOT));
    } catch (IllegalArgumentException | NullPointerException e) {
      throw new InvalidInputException(
          "unknown backend '" + text + "' (auto, tensorrt or onnxruntime)");
    }
  }

  public String label() {
    return name().toLowerCase(Locale.ROOT);
  }
}
