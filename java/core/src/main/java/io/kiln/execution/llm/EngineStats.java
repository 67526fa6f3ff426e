package io.kiln.execution.llm;

/**
 * Engine-wide counters, as of the last finished step.
 *
 * @param kvBlocksUsable blocks sequences can hold (the pool minus the null block)
 * @param prefixCacheHitTokens prompt tokens not computed thanks to the prefix cache
 */
public record EngineStats(
    long steps,
    long generatedTokens,
    long preemptions,
    int kvBlocksUsed,
    int kvBlocksUsable,
    int peakKvBlocksUsed,
    long prefixCacheHitTokens,
    int running,
    int waiting) {

  static final EngineStats EMPTY = new EngineStats(0, 0, 0, 0, 0, 0, 0, 0, 0);

  public double kvUsage() {
    return kvBlocksUsable == 0 ? 0 : kvBlocksUsed / (double) kvBlocksUsable;
  }

  public double peakKvUsage() {
    return kvBlocksUsable == 0 ? 0 : peakKvBlocksUsed / (double) kvBlocksUsable;
  }
}
