package io.kiln.engine.trt;

import io.kiln.InvalidInputException;
import io.kiln.Tensor;
import io.kiln.precision.CalibrationData;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.List;
import java.util.Map;

/**
 * Batches for the implicit INT8 path's entropy calibrator, all of one shape and held in memory
 * (TensorRT asks for them one by one during the build), plus the file where TensorRT's calibration
 * table is kept between builds. Closing it frees the tensors.
 */
public record CalibrationBatches(List<Map<String, Tensor>> batches, Path cacheFile)
    implements AutoCloseable {
  public CalibrationBatches {
    batches = List.copyOf(batches);
    if (batches.isEmpty()) {
      throw new InvalidInputException("calibration needs at least one batch");
    }
  }

  /**
   * Reads every batch of {@code source} (one pass). The calibrator has a single batch size, so all
   * batches must have the same inputs with the same shapes.
   */
  public static CalibrationBatches collect(CalibrationData source, Path cacheFile) {
    List<Map<String, Tensor>> batches = new ArrayList<>();
    try {
      for (Iterator<Map<String, Tensor>> it = source.batches(); it.hasNext(); ) {
        Map<String, Tensor> batch = it.next();
        batches.add(batch);
        if (batches.size() > 1) {
          requireSameShapes(batches.get(0), batch, batches.size(), source.description());
        }
      }
      return new CalibrationBatches(batches, cacheFile);
    } catch (RuntimeException e) {
      batches.forEach(b -> b.values().forEach(Tensor::close));
      throw e;
    }
  }

  private static void requireSameShapes(
      Map<String, Tensor> first, Map<String, Tensor> batch, int number, String source) {
    if (!first.keySet().equals(batch.keySet())) {
      throw new InvalidInputException(
          "calibration batch "
              + number
              + " of "
              + source
              + " has inputs "
              + batch.keySet()
              + ", the first has "
              + first.keySet());
    }
    for (Map.Entry<String, Tensor> e : first.entrySet()) {
      long[] shape = batch.get(e.getKey()).shape();
      if (!Arrays.equals(e.getValue().shape(), shape)) {
        throw new InvalidInputException(
            "calibration batch "
                + number
                + " of "
                + source
                + ": input "
                + e.getKey()
                + " has shape "
                + Arrays.toString(shape)
                + ", the first batch "
                + Arrays.toString(e.getValue().shape())
                + "; the INT8 calibrator needs one shape");
      }
    }
  }

  /** The batch size, read from axis 0 of the first tensor of the first batch. */
  public int batchSize() {
    return (int) batches.get(0).values().iterator().next().dim(0);
  }

  @Override
  public void close() {
    batches.forEach(b -> b.values().forEach(Tensor::close));
  }
}
