package io.kiln.bench;

/**
 * Kiln and its peer at one batch size.
 *
 * @param peer the raw runtime measured in the same run, or null when not compared
 * @param timeRatio median over rounds of Kiln's median latency divided by the peer's (NaN without a
 *     peer); 1.03 means Kiln took 3% longer
 * @param roundRatios the per-round ratios the median is taken from
 * @param maxAbsDiff largest absolute difference between Kiln's and the peer's first output
 */
public record BatchRow(
    Measurement kiln, Measurement peer, double timeRatio, double[] roundRatios, double maxAbsDiff) {
  public int batch() {
    return kiln.batch();
  }
}
