package io.kiln.execution.llm;

import java.util.Arrays;

/**
 * Timings and counts of one request. Times are from its submission.
 *
 * @param cachedPromptTokens prompt tokens whose K/V came from the prefix cache at first admission
 * @param speculativeProposed tokens proposed for this request by speculation (0 without it)
 * @param speculativeAccepted proposed tokens the target model kept
 * @param ttftMillis time to the first token, NaN if none came
 * @param interTokenMillis gaps between consecutive new tokens
 */
public record RequestMetrics(
    int promptTokens,
    int generatedTokens,
    int cachedPromptTokens,
    int preemptions,
    int speculativeProposed,
    int speculativeAccepted,
    double ttftMillis,
    double[] interTokenMillis,
    double totalMillis) {

  public RequestMetrics {
    interTokenMillis = interTokenMillis.clone();
  }

  /** Accepted over proposed tokens; NaN when nothing was proposed. */
  public double acceptanceRate() {
    return speculativeProposed == 0
        ? Double.NaN
        : speculativeAccepted / (double) speculativeProposed;
  }

  public double meanInterTokenMillis() {
    return Arrays.stream(interTokenMillis).average().orElse(Double.NaN);
  }

  @Override
  public double[] interTokenMillis() {
    return interTokenMillis.clone();
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof RequestMetrics m
        && promptTokens == m.promptTokens
        && generatedTokens == m.generatedTokens
        && cachedPromptTokens == m.cachedPromptTokens
        && preemptions == m.preemptions
        && speculativeProposed == m.speculativeProposed
        && speculativeAccepted == m.speculativeAccepted
        && Double.compare(ttftMillis, m.ttftMillis) == 0
        && Arrays.equals(interTokenMillis, m.interTokenMillis)
        && Double.compare(totalMillis, m.totalMillis) == 0;
  }

  @Override
  public int hashCode() {
    return promptTokens * 31 + generatedTokens + Arrays.hashCode(interTokenMillis);
  }

  @Override
  public String toString() {
    return String.format(
        "RequestMetrics[prompt=%d, generated=%d, cached=%d, preemptions=%d, ttft=%.3f ms,"
            + " mean itl=%.3f ms, total=%.3f ms]",
        promptTokens,
        generatedTokens,
        cachedPromptTokens,
        preemptions,
        ttftMillis,
        meanInterTokenMillis(),
        totalMillis);
  }
}
