package io.kiln.execution.llm;

import java.util.Arrays;

/**
 * One request's state inside the scheduler: all its tokens (prompt then generated), how many of
 * them have K/V in the pool, and its timings. Touched only by the engine thread.
 */
final class LlmRequest {
  final long id;
  final int promptLength;
  final SamplingParams params;
  final Sampler sampler;
  final TokenListener listener;
  final int maxTotalTokens;
  private final int[] stopTokens;

  final int[] tokens;
  int numTokens;
  int numComputed;

  final long arrivalNanos;
  long firstTokenNanos;
  long lastTokenNanos;
  final double[] interTokenMillis;
  int preemptions;
  int cachedPromptTokens = -1;
  int speculativeProposed;
  int speculativeAccepted;
  FinishReason finishReason;

  LlmRequest(
      long id,
      int[] prompt,
      SamplingParams params,
      int eosTokenId,
      int contextLimit,
      TokenListener listener) {
    this.id = id;
    this.promptLength = prompt.length;
    this.params = params;
    this.sampler = new Sampler(params);
    this.listener = listener;
    // The last sampled token is never computed, so it needs no position of its own.
    this.maxTotalTokens = Math.min(prompt.length + params.maxNewTokens(), contextLimit + 1);
    this.tokens = Arrays.copyOf(prompt, maxTotalTokens);
    this.numTokens = prompt.length;
    int[] stops = params.stopTokenIds();
    if (!params.ignoreEos() && eosTokenId >= 0) {
      stops = Arrays.copyOf(stops, stops.length + 1);
      stops[stops.length - 1] = eosTokenId;
    }
    this.stopTokens = stops;
    this.interTokenMillis = new double[Math.max(maxTotalTokens - prompt.length - 1, 0)];
    this.arrivalNanos = System.nanoTime();
  }

  int numGenerated() {
    return numTokens - promptLength;
  }

  /** All tokens known so far, exactly. */
  int[] knownTokens() {
    return Arrays.copyOf(tokens, numTokens);
  }

  int[] generatedTokens() {
    return Arrays.copyOfRange(tokens, promptLength, numTokens);
  }

  /** Appends a sampled token; returns why the request ends with it, or null. */
  FinishReason append(int token, long nowNanos) {
    int index = numGenerated();
    tokens[numTokens++] = token;
    if (index == 0) {
      firstTokenNanos = nowNanos;
    } else {
      interTokenMillis[index - 1] = (nowNanos - lastTokenNanos) / 1e6;
    }
    lastTokenNanos = nowNanos;
    for (int stop : stopTokens) {
      if (stop == token) {
        return FinishReason.STOP;
      }
    }
    return numTokens >= maxTotalTokens ? FinishReason.LENGTH : null;
  }

  RequestMetrics metrics(long nowNanos) {
    int generated = numGenerated();
    return new RequestMetrics(
        promptLength,
        generated,
        Math.max(cachedPromptTokens, 0),
        preemptions,
        speculativeProposed,
        speculativeAccepted,
        generated > 0 ? (firstTokenNanos - arrivalNanos) / 1e6 : Double.NaN,
        Arrays.copyOf(interTokenMillis, Math.max(generated - 1, 0)),
        (nowNanos - arrivalNanos) / 1e6);
  }

  GenerationResult result(long nowNanos) {
    return new GenerationResult(
        id,
        Arrays.copyOf(tokens, promptLength),
        generatedTokens(),
        finishReason,
        metrics(nowNanos));
  }
}
