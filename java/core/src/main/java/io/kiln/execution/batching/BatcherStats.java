package io.kiln.execution.batching;

/**
 * Counters of a {@link DynamicBatcher}.
 *
 * @param requests requests served
 * @param batches engine runs
 * @param rows rows run (the sum of batch sizes)
 * @param largestBatch rows of the largest run
 */
public record BatcherStats(long requests, long batches, long rows, long largestBatch) {
  public double meanRowsPerBatch() {
    return batches == 0 ? 0 : (double) rows / batches;
  }
}
