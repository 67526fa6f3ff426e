package io.kiln.execution.llm;

import io.kiln.InvalidInputException;
import java.util.Arrays;

/**
 * How one request picks its tokens. Temperature 0 is greedy. {@code topK} 0 and {@code topP} 1
 * disable those filters; {@code repetitionPenalty} 1 disables the penalty. The same seed and input
 * give the same tokens, whatever else runs in the batch.
 *
 * @param stopTokenIds tokens that end the request (kept in the output); the model's EOS is added
 *     unless {@code ignoreEos}
 * @param speculate whether the request speculates when its engine is set up to (the output
 *     distribution is the same either way)
 */
public record SamplingParams(
    double temperature,
    int topK,
    double topP,
    double repetitionPenalty,
    long seed,
    int maxNewTokens,
    int[] stopTokenIds,
    boolean ignoreEos,
    boolean speculate)
    implements java.io.Serializable {

  public SamplingParams {
    stopTokenIds = stopTokenIds == null ? new int[0] : stopTokenIds.clone();
  }

  public static SamplingParams greedy(int maxNewTokens) {
    return builder().temperature(0).maxNewTokens(maxNewTokens).build();
  }

  public static Builder builder() {
    return new Builder();
  }

  public boolean isGreedy() {
    return temperature == 0;
  }

  /**
   * Greedy with no repetition penalty: the next token is the logits' argmax alone, so a runner may
   * pick it where the logits are computed.
   */
  public boolean isPlainArgmax() {
    return isGreedy() && repetitionPenalty == 1;
  }

  /** Throws {@link InvalidInputException} naming the first parameter out of range. */
  public SamplingParams validate(int vocabSize) {
    if (!(temperature >= 0) || Double.isInfinite(temperature)) {
      throw new InvalidInputException("temperature must be finite and >= 0, got " + temperature);
    }
    if (topK < 0) {
      throw new InvalidInputException("top_k must be >= 0 (0 disables it), got " + topK);
    }
    if (!(topP > 0 && topP <= 1)) {
      throw new InvalidInputException("top_p must be in (0, 1], got " + topP);
    }
    if (!(repetitionPenalty > 0) || Double.isInfinite(repetitionPenalty)) {
      throw new InvalidInputException(
          "repetition_penalty must be finite and > 0, got " + repetitionPenalty);
    }
    if (maxNewTokens < 1) {
      throw new InvalidInputException("max_new_tokens must be >= 1, got " + maxNewTokens);
    }
    for (int id : stopTokenIds) {
      if (id < 0 || id >= vocabSize) {
        throw new InvalidInputException(
            "stop token " + id + " is outside the vocabulary [0, " + vocabSize + ")");
      }
    }
    return this;
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof SamplingParams p
        && Double.compare(temperature, p.temperature) == 0
        && topK == p.topK
        && Double.compare(topP, p.topP) == 0
        && Double.compare(repetitionPenalty, p.repetitionPenalty) == 0
        && seed == p.seed
        && maxNewTokens == p.maxNewTokens
        && Arrays.equals(stopTokenIds, p.stopTokenIds)
        && ignoreEos == p.ignoreEos
        && speculate == p.speculate;
  }

  @Override
  public int hashCode() {
    return Double.hashCode(temperature) * 31 + Long.hashCode(seed) + Arrays.hashCode(stopTokenIds);
  }

  @Override
  public String toString() {
    return "SamplingParams[temperature="
        + temperature
        + ", topK="
        + topK
        + ", topP="
        + topP
        + ", repetitionPenalty="
        + repetitionPenalty
        + ", seed="
        + seed
        + ", maxNewTokens="
        + maxNewTokens
        + ", stopTokenIds="
        + Arrays.toString(stopTokenIds)
        + ", ignoreEos="
        + ignoreEos
        + ", speculate="
        + speculate
        + "]";
  }

  /** Defaults: temperature 1, no top-k/top-p/penalty, seed 0, 16 new tokens. */
  public static final class Builder {
    private double temperature = 1;
    private int topK;
    private double topP = 1;
    private double repetitionPenalty = 1;
    private long seed;
    private int maxNewTokens = 16;
    private int[] stopTokenIds = new int[0];
    private boolean ignoreEos;
    private boolean speculate = true;

    public Builder temperature(double v) {
      temperature = v;
      return this;
    }

    public Builder topK(int v) {
      topK = v;
      return this;
    }

    public Builder topP(double v) {
      topP = v;
      return this;
    }

    public Builder repetitionPenalty(double v) {
      repetitionPenalty = v;
      return this;
    }

    public Builder seed(long v) {
      seed = v;
      return this;
    }

    public Builder maxNewTokens(int v) {
      maxNewTokens = v;
      return this;
    }

    public Builder stopTokenIds(int... v) {
      stopTokenIds = v;
      return this;
    }

    public Builder ignoreEos(boolean v) {
      ignoreEos = v;
      return this;
    }

    public Builder speculate(boolean v) {
      speculate = v;
      return this;
    }

    public SamplingParams build() {
      return new SamplingParams(
          temperature,
          topK,
          topP,
          repetitionPenalty,
          seed,
          maxNewTokens,
          stopTokenIds,
          ignoreEos,
          speculate);
    }
  }
}
