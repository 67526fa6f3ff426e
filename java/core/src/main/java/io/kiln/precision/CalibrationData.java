package io.kiln.precision;

import io.kiln.Tensor;
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
}
