package io.kiln.bench;

import io.kiln.BenchmarkResult;

/**
 * One engine's numbers at one batch size.
 *
 * @param engine what ran, such as {@code kiln onnxruntime-cpu}
 * @param utilizationPercent device utilization while it ran (CPU percent of all cores, or GPU)
 * @param memoryMiB resident memory (CPU) or device memory in use (GPU) after the runs
 */
public record Measurement(
    String engine, BenchmarkResult latencies, double utilizationPercent, double memoryMiB) {

  public int batch() {
    return latencies.batchSize();
  }

  public double itemsPerSecond() {
    return latencies.itemsPerSecond();
  }

  /** Per-item latency: the batch latency quantile divided by the batch size, in ms. */
  public double perItemMillis(double quantile) {
    return latencies.quantileMillis(quantile) / latencies.batchSize();
  }
}
