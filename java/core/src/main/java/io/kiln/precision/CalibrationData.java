package io.kiln.precision;

import io.kiln.InvalidInputException;
import io.kiln.Tensor;
import io.kiln.model.onnx.OnnxModel;
import java.nio.file.Path;
import java.util.Iterator;
import java.util.Map;

/**
 * Model inputs for calibration, streamed one batch at a time so a large set never sits in memory.
 * Each call to {@link #batches()} starts a fresh pass (histogram collectors need two). The consumer
 * closes the tensors of each batch.
 */
public interface CalibrationData {
  Iterator<Map<String, Tensor>> batches();

  /** Where the data comes from, for logs and the cache file. */
  String description();

  /**
   * Parses a command-line spec: {@code random:N}, {@code texts:FILE} (needs a tokenizer), or a
   * directory of input files ({@code *.json} in the {@code kiln run} input format, or
   * subdirectories holding one {@code NAME.npy} per input).
   */
  static CalibrationData parse(String spec, OnnxModel model, Path tokenizer) {
    return parse(spec, model, tokenizer, 1234);
  }

  /** As {@link #parse(String, OnnxModel, Path)}, with the seed of {@code random:N} data. */
  static CalibrationData parse(String spec, OnnxModel model, Path tokenizer, long seed) {
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
