package io.kiln.execution.llm;

import java.util.concurrent.CompletableFuture;
import java.util.function.LongConsumer;

/** A submitted request: its id, its eventual result, and a way to cancel it. */
public final class GenerationHandle {
  private final long requestId;
  private final CompletableFuture<GenerationResult> result;
  // The engine's cancel, passed in so that a handle never names its engine.
  private final LongConsumer canceller;

  GenerationHandle(
      long requestId, CompletableFuture<GenerationResult> result, LongConsumer canceller) {
    this.requestId = requestId;
    this.result = result;
    this.canceller = canceller;
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
    canceller.accept(requestId);
  }
}
