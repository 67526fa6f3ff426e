package io.kiln;

import java.util.Arrays;

/** Latencies of repeated runs at one batch size. */
public record BenchmarkResult(int batchSize, long[] latenciesNanos) {
  public BenchmarkResult {
    latenciesNanos = latenciesNanos.clone();
    Arrays.sort(latenciesNanos);
  }

  public int runs() {
    return latenciesNanos.length;
  }

  /** The q-quantile of run latency in milliseconds (nearest rank), 0 &lt; q &lt;= 1. */
  public double quantileMillis(double q) {
    int rank = (int) Math.ceil(q * latenciesNanos.length);
    return latenciesNanos[Math.max(0, Math.min(latenciesNanos.length - 1, rank - 1))] / 1e6;
  }

  public double meanMillis() {
    return Arrays.stream(latenciesNanos).average().orElse(Double.NaN) / 1e6;
  }

  /** Items per second at the median latency. */
  public double itemsPerSecond() {
    return batchSize / (quantileMillis(0.5) / 1e3);
  }

  @Override
  public long[] latenciesNanos() {
    return latenciesNanos.clone();
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof BenchmarkResult b
        && b.batchSize == batchSize
        && Arrays.equals(b.latenciesNanos, latenciesNanos);
  }

  @Override
  public int hashCode() {
    return batchSize * 31 + Arrays.hashCode(latenciesNanos);
  }

  @Override
  public String toString() {
    return "BenchmarkResult(batch=" + batchSize + ", runs=" + runs() + ")";
  }
}
