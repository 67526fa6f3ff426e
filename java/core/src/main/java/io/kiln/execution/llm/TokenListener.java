package io.kiln.execution.llm;

/**
 * Receives one request's tokens as they come, on the engine thread: keep the work short. Exactly
 * one of {@link #onComplete} and {@link #onError} ends the stream.
 */
public interface TokenListener {
  void onToken(TokenEvent event);

  default void onComplete(GenerationResult result) {}

  /** A {@link GenerationCancelledException} when cancelled; the runner's error when it failed. */
  default void onError(Throwable error) {}
}
