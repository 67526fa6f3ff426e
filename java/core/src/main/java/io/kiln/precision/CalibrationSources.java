package io.kiln.precision;

import io.kiln.InvalidInputException;
import io.kiln.model.onnx.OnnxModel;
import java.nio.file.Path;

/** Calibration data from its command-line spec. */
public final class CalibrationSources {
  private CalibrationSources() {}

  /**
   * Parses a command-line spec: {@code random:N}, {@code texts:FILE} (needs a tokenizer), or a
   * directory of input files ({@code *.json} in the {@code kiln run} input format, or
   * subdirectories holding one {@code NAME.npy} per input).
   */
  public static CalibrationData parse(String spec, OnnxModel model, Path tokenizer) {
    return parse(spec, model, tokenizer, 1234);
  }

  /** As {@link #parse(String, OnnxModel, Path)}, with the seed of {@code random:N} data. */
  public static CalibrationData parse(String spec, OnnxModel model, Path tokenizer, long seed) {
    if (spec == null || spec.isBlank()) {
      throw new InvalidInputException("calibration data spec is empty");
    }
    if (spec.startsWith("random:")) {
      int n;
      try {
        n = Integer.parseInt(spec.substring("random:".length()).trim());
      } catch (NumberFormatException e) {
        throw new InvalidInputException("random:N needs a number, got '" + spec + "'");
      }
      return new RandomCalibrationData(model, n, 1, 128, seed);
    }
    if (spec.startsWith("texts:")) {
      if (tokenizer == null) {
        throw new InvalidInputException("texts: calibration needs a tokenizer");
      }
      return TextCalibrationData.open(
          Path.of(spec.substring("texts:".length())), tokenizer, model.inputNames(), 8, 128);
    }
    return new DirectoryCalibrationData(Path.of(spec));
  }
}
