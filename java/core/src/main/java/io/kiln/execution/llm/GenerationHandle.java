package io.kiln.execution.llm;

import java.util.concurrent.CompletableFuture;

/** A submitted request: its id, its eventual result, and a way to cancel it. */
public final class GenerationHandle {
  private final long requestId;
  private final CompletableFuture<GenerationResult> result;
  private final LlmEngine engine;

  GenerationHandle(long requestId, CompletableFuture<GenerationResult> result, LlmEngine engine) {
    this.requestId = requestId;
    this.result = result;
    this.engine = engine;
  }

  public long requestId() {
    return requestId;
  }

  /**
   * Completes with the result, or exceptionally with {@link GenerationCancelledException} or the
   * runner's error.
   */
  public CompletableFuture<GenerationResult> result() {
    return result;
  }

  /**
   * Asks the engine to stop the request; it leaves before the next step, its blocks are freed, and
   * its stream ends with {@link GenerationCancelledException}. No effect once finished.
   */
  public void cancel() {
    engine.cancel(requestId);
  }
}
