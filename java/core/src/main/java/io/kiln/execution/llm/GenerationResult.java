package io.kiln.execution.llm;

import java.util.Arrays;

/** A finished request: its new tokens, why it stopped, and its metrics. */
public record GenerationResult(
    long requestId,
    int[] promptIds,
    int[] newTokenIds,
    FinishReason finishReason,
    RequestMetrics metrics) {

  public GenerationResult {
    promptIds = promptIds.clone();
    newTokenIds = newTokenIds.clone();
  }

  @Override
  public int[] promptIds() {
    return promptIds.clone();
  }

  @Override
  public int[] newTokenIds() {
    return newTokenIds.clone();
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof GenerationResult r
        && requestId == r.requestId
        && Arrays.equals(promptIds, r.promptIds)
        && Arrays.equals(newTokenIds, r.newTokenIds)
        && finishReason == r.finishReason
        && metrics.equals(r.metrics);
  }

  @Override
  public int hashCode() {
    return Long.hashCode(requestId) * 31 + Arrays.hashCode(newTokenIds);
  }

  @Override
  public String toString() {
    return "GenerationResult[id="
        + requestId
        + ", new="
        + Arrays.toString(newTokenIds)
        + ", "
        + finishReason
        + ", "
        + metrics
        + "]";
  }
}
