package io.kiln.execution.llm;

import io.kiln.InvalidInputException;

/**
 * How an engine speculates: each decode step of a request proposes up to {@code numTokens} tokens,
 * and the target model checks them all in one step, keeping the longest prefix it agrees with.
 *
 * @param method where the proposals come from
 * @param numTokens tokens proposed per step (K), 1 to {@link #MAX_TOKENS}
 * @param ngramMin shortest suffix that {@link Method#NGRAM} looks up
 * @param ngramMax longest suffix that {@link Method#NGRAM} looks up (tried first)
 */
public record SpeculativeConfig(Method method, int numTokens, int ngramMin, int ngramMax) {
  /** Most tokens one step may propose; runners size their logits rows for it. */
  public static final int MAX_TOKENS = 8;

  public static final int DEFAULT_NGRAM_MIN = 1;
  public static final int DEFAULT_NGRAM_MAX = 4;

  public enum Method {
    /** A smaller model with the same vocabulary proposes, one token per draft step. */
    DRAFT,
    /** The continuation of the latest earlier match of the last n tokens (prompt lookup). */
    NGRAM
  }

  public SpeculativeConfig {
    if (method == null) {
      throw new InvalidInputException("the speculation method is missing");
    }
    if (numTokens < 1 || numTokens > MAX_TOKENS) {
      throw new InvalidInputException(
          "speculative tokens must be in [1, " + MAX_TOKENS + "], got " + numTokens);
    }
    if (ngramMin < 1 || ngramMax < ngramMin) {
      throw new InvalidInputException(
          "n-gram sizes need 1 <= min <= max, got min " + ngramMin + " and max " + ngramMax);
    }
  }

  /**
   * Checks the K a runner sizes its verification steps for: 0 (it verifies nothing) to {@link
   * #MAX_TOKENS}.
   *
   * @throws InvalidInputException when it is outside that range
   */
  public static void checkVerifiedTokens(int speculativeTokens) {
    if (speculativeTokens < 0 || speculativeTokens > MAX_TOKENS) {
      throw new InvalidInputException(
          "speculative tokens must be in [0, " + MAX_TOKENS + "], got " + speculativeTokens);
    }
  }

  public static SpeculativeConfig draft(int numTokens) {
    return new SpeculativeConfig(Method.DRAFT, numTokens, DEFAULT_NGRAM_MIN, DEFAULT_NGRAM_MAX);
  }

  public static SpeculativeConfig ngram(int numTokens) {
    return new SpeculativeConfig(Method.NGRAM, numTokens, DEFAULT_NGRAM_MIN, DEFAULT_NGRAM_MAX);
  }

  public SpeculativeConfig withNgram(int min, int max) {
    return new SpeculativeConfig(method, numTokens, min, max);
  }
}
