package io.kiln.execution.llm;

/**
 * Limits of one engine step, and of the KV pool.
 *
 * @param maxNumSeqs most sequences in one step
 * @param maxNumBatchedTokens most tokens (prefill chunks plus decodes) in one step
 * @param maxKvBlocks blocks of the runner's pool the scheduler may use (including the null block);
 *     0 uses the whole pool
 */
public record SchedulerConfig(
    int maxNumSeqs, int maxNumBatchedTokens, int maxKvBlocks, boolean prefixCaching) {

  public SchedulerConfig {
    if (maxNumSeqs < 1) {
      throw new IllegalArgumentException("maxNumSeqs must be >= 1: " + maxNumSeqs);
    }
    if (maxNumBatchedTokens < 1) {
      throw new IllegalArgumentException(
          "maxNumBatchedTokens must be >= 1: " + maxNumBatchedTokens);
    }
    if (maxKvBlocks < 0 || maxKvBlocks == 1) {
      throw new IllegalArgumentException("maxKvBlocks must be 0 (all) or >= 2: " + maxKvBlocks);
    }
  }

  public static SchedulerConfig defaults() {
    return new SchedulerConfig(64, 512, 0, true);
  }

  public SchedulerConfig withMaxKvBlocks(int blocks) {
    return new SchedulerConfig(maxNumSeqs, maxNumBatchedTokens, blocks, prefixCaching);
  }

  public SchedulerConfig withMaxNumSeqs(int n) {
    return new SchedulerConfig(n, maxNumBatchedTokens, maxKvBlocks, prefixCaching);
  }

  public SchedulerConfig withMaxNumBatchedTokens(int n) {
    return new SchedulerConfig(maxNumSeqs, n, maxKvBlocks, prefixCaching);
  }

  public SchedulerConfig withPrefixCaching(boolean on) {
    return new SchedulerConfig(maxNumSeqs, maxNumBatchedTokens, maxKvBlocks, on);
  }
}
