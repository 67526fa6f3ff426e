package io.kiln.execution.llm;

/**
 * Engine-wide counters, as of the last finished step.
 *
 * @param kvBlocksUsable blocks sequences can hold (the pool minus the null block)
 * @param prefixCacheHitTokens prompt tokens not computed thanks to the prefix cache
 * @param speculativeSteps verifications: a sequence checking proposed tokens in one step
 * @param speculativeProposed tokens proposed by speculation
 * @param speculativeAccepted proposed tokens the target model kept
 * @param draftKvBlocksUsed blocks of the draft model's pool that requests hold
 * @param decodeSteps steps without prompt work (every chunk goes on from its request's last known
 *     token), which the times below cover; a draft model's first pass over a prompt falls in its
 *     request's first such step
 * @param decodeStepNanos wall time inside those steps: scheduling, proposing, the model's call and
 *     taking its tokens (not the listeners)
 * @param decodeProposeNanos of that, proposing speculative tokens (a draft model's calls)
 * @param decodeForwardNanos of that, the target model's calls
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
    int waiting,
    long speculativeSteps,
    long speculativeProposed,
    long speculativeAccepted,
    int draftKvBlocksUsed,
    long decodeSteps,
    long decodeStepNanos,
    long decodeProposeNanos,
    long decodeForwardNanos) {

  static final EngineStats EMPTY =
      new EngineStats(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);

  /** Accepted over proposed tokens; NaN when nothing was proposed. */
  public double acceptanceRate() {
    return speculativeProposed == 0
        ? Double.NaN
        : speculativeAccepted / (double) speculativeProposed;
  }

  /** Tokens a verification yields on average: the accepted ones plus the target's own. */
  public double meanAcceptedLength() {
    return speculativeSteps == 0 ? Double.NaN : 1 + speculativeAccepted / (double) speculativeSteps;
  }

  public double kvUsage() {
    return kvBlocksUsable == 0 ? 0 : kvBlocksUsed / (double) kvBlocksUsable;
  }

  public double peakKvUsage() {
    return kvBlocksUsable == 0 ? 0 : peakKvBlocksUsed / (double) kvBlocksUsable;
  }
}
