package io.kiln.engine.trt;

import io.kiln.Tensor;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * Batches for the implicit INT8 path's entropy calibrator, all of one shape, plus the file where
 * TensorRT's calibration table is kept between builds.
 */
public record CalibrationData(List<Map<String, Tensor>> batches, Path cacheFile) {
  public CalibrationData {
    batches = List.copyOf(batches);
    if (batches.isEmpty()) {
      throw new io.kiln.InvalidInputException("calibration needs at least one batch");
    }
  }

  /** The batch size, read from axis 0 of the first tensor of the first batch. */
  public int batchSize() {
    return (int) batches.get(0).values().iterator().next().dim(0);
  }
}
