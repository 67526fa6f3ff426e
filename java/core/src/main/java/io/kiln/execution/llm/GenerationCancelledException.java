package io.kiln.execution.llm;

import java.util.concurrent.CancellationException;

/** The request was cancelled (by its caller or by the engine closing) before it finished. */
public final class GenerationCancelledException extends CancellationException {
  private static final long serialVersionUID = 1L;

  private final long requestId;
  private final int generatedTokens;

  public GenerationCancelledException(long requestId, int generatedTokens, String why) {
    super("request " + requestId + " cancelled after " + generatedTokens + " tokens: " + why);
    this.requestId = requestId;
    this.generatedTokens = generatedTokens;
  }

  public long requestId() {
    return requestId;
  }

  public int generatedTokens() {
    return generatedTokens;
  }
}
