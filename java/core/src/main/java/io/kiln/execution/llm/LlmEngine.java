package io.kiln.execution.llm;

import io.kiln.BackendException;
import io.kiln.ClosedException;
import io.kiln.InvalidInputException;
import io.kiln.execution.kv.KvBlockManager;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.Flow;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Generates tokens for many concurrent requests with one model runner. Any thread may submit or
 * cancel; one engine thread runs the steps (continuous batching: requests join and leave between
 * steps). Tokens come back through a callback ({@link #submit}), an iterator ({@link #stream}), a
 * {@link Flow.Publisher} ({@link #publisher}) or a blocking call ({@link #generate}).
 *
 * <p>With a {@link SpeculativeConfig}, decoding requests propose several tokens per step (from a
 * draft model or by n-gram lookup) and the runner verifies them in the same step.
 *
 * <p>The runners stay owned by the caller: close the engine first, then the runners.
 */
public final class LlmEngine implements AutoCloseable {
  /** How long close waits for the step in flight. */
  static final java.time.Duration CLOSE_WAIT = java.time.Duration.ofSeconds(60);

  private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(LlmEngine.class);
  private static final Runnable SHUTDOWN = () -> {};

  private final ModelRunner runner;
  private final ModelSpec spec;
  private final Scheduler scheduler;
  private final Speculator speculator; // null: no speculation
  private final int contextLimit;
  private final BlockingQueue<Runnable> commands = new LinkedBlockingQueue<>();
  private final AtomicLong nextRequestId = new AtomicLong(1);
  private final Map<Long, LlmRequest> active = new HashMap<>(); // engine thread only
  private final Thread thread;
  private volatile boolean closed;
  private volatile EngineStats stats = EngineStats.EMPTY;
  private long steps;
  private long generatedTokens;
  private long decodeSteps; // steps without prompt work, their wall time, and of it in proposing
  private long decodeStepNanos; // and in the model's calls
  private long decodeProposeNanos;
  private long decodeForwardNanos;

  public LlmEngine(ModelRunner runner, SchedulerConfig config) {
    this(runner, config, null, null);
  }

  /**
   * An engine that speculates: {@code speculative} says how, and {@code draft} is the draft model's
   * runner for {@link SpeculativeConfig.Method#DRAFT} (null for n-gram lookup). Open the runner
   * with {@link RunnerOptions#forTarget} and the draft with {@link RunnerOptions#forDraft}, so that
   * a CUDA runner captures graphs for the steps speculation takes.
   *
   * @throws io.kiln.ModelException when the draft's vocabulary differs from the target's
   */
  public LlmEngine(
      ModelRunner runner,
      SchedulerConfig config,
      SpeculativeConfig speculative,
      ModelRunner draft) {
    this.runner = runner;
    this.spec = runner.spec();
    KvPoolSpec pool = runner.kvPool();
    int blocks = config.maxKvBlocks() == 0 ? pool.numBlocks() : config.maxKvBlocks();
    if (blocks > pool.numBlocks()) {
      throw new IllegalArgumentException(
          "maxKvBlocks " + blocks + " exceeds the runner's pool of " + pool.numBlocks());
    }
    KvBlockManager kv = new KvBlockManager(blocks, pool.blockSize(), config.prefixCaching());
    this.speculator = speculator(speculative, draft, config);
    this.scheduler = new Scheduler(config, kv, speculator);
    this.contextLimit =
        (int) Math.min(spec.maxPositions(), (long) kv.numUsableBlocks() * kv.blockSize());
    this.thread = new Thread(this::loop, "kiln-llm-engine");
    thread.setDaemon(true);
    thread.start();
  }

  private Speculator speculator(
      SpeculativeConfig speculative, ModelRunner draft, SchedulerConfig config) {
    if (speculative == null) {
      if (draft != null) {
        throw new IllegalArgumentException("a draft runner needs a speculative config");
      }
      return null;
    }
    Proposer proposer =
        switch (speculative.method()) {
          case NGRAM -> {
            if (draft != null) {
              throw new IllegalArgumentException("n-gram speculation takes no draft runner");
            }
            yield new NgramProposer(speculative.ngramMin(), speculative.ngramMax());
          }
          case DRAFT -> {
            if (draft == null) {
              throw new IllegalArgumentException("draft speculation needs a draft runner");
            }
            yield new DraftModelProposer(
                draft, spec, config.maxNumBatchedTokens(), speculative.numTokens());
          }
        };
    return new Speculator(speculative, proposer);
  }

  public ModelSpec spec() {
    return spec;
  }

  /** How this engine speculates, or null. */
  public SpeculativeConfig speculativeConfig() {
    return speculator == null ? null : speculator.config();
  }

  public EngineStats stats() {
    return stats;
  }

  /**
   * Queues a request; {@code listener} gets its tokens on the engine thread.
   *
   * @throws InvalidInputException for an empty prompt, token ids outside the vocabulary, a prompt
   *     longer than the model's context or the KV pool, or invalid sampling parameters
   */
  public GenerationHandle submit(int[] prompt, SamplingParams params, TokenListener listener) {
    validate(prompt, params);
    if (listener == null) {
      throw new IllegalArgumentException("listener is null");
    }
    long id = nextRequestId.getAndIncrement();
    CompletableFuture<GenerationResult> result = new CompletableFuture<>();
    TokenListener completing =
        new TokenListener() {
          @Override
          public void onToken(TokenEvent event) {
            listener.onToken(event);
          }

          @Override
          public void onComplete(GenerationResult r) {
            try {
              listener.onComplete(r);
            } finally {
              result.complete(r);
            }
          }

          @Override
          public void onError(Throwable error) {
            try {
              listener.onError(error);
            } finally {
              result.completeExceptionally(error);
            }
          }
        };
    LlmRequest request =
        new LlmRequest(id, prompt.clone(), params, spec.eosTokenId(), contextLimit, completing);
    enqueue(
        () -> {
          active.put(id, request);
          scheduler.add(request);
        });
    return new GenerationHandle(id, result, this::cancel);
  }

  /** Queues a request and returns its tokens as a blocking iterator. */
  public TokenStream stream(int[] prompt, SamplingParams params) {
    TokenStream stream = new TokenStream();
    stream.attach(submit(prompt, params, stream.listener));
    return stream;
  }

  /** A cold publisher: each subscription submits the request once. */
  public Flow.Publisher<TokenEvent> publisher(int[] prompt, SamplingParams params) {
    validate(prompt, params);
    return new TokenPublisher(this::submit, prompt.clone(), params);
  }

  /**
   * Runs one request to the end.
   *
   * @throws GenerationCancelledException when it is cancelled meanwhile
   */
  public GenerationResult generate(int[] prompt, SamplingParams params) {
    GenerationHandle handle = submit(prompt, params, event -> {});
    try {
      return handle.result().join();
    } catch (CompletionException e) {
      if (e.getCause() instanceof RuntimeException cause) {
        throw cause;
      }
      throw e;
    }
  }

  void cancel(long requestId) {
    if (!closed) {
      commands.add(() -> finishCancelled(requestId, "cancelled by the caller"));
    }
  }

  private void validate(int[] prompt, SamplingParams params) {
    if (params == null) {
      throw new InvalidInputException("sampling parameters are missing");
    }
    params.validate(spec.vocabSize());
    if (prompt == null || prompt.length == 0) {
      throw new InvalidInputException("the prompt is empty");
    }
    for (int i = 0; i < prompt.length; i++) {
      if (prompt[i] < 0 || prompt[i] >= spec.vocabSize()) {
        throw new InvalidInputException(
            "prompt token "
                + i
                + " is "
                + prompt[i]
                + ", outside the vocabulary [0, "
                + spec.vocabSize()
                + ")");
      }
    }
    if (prompt.length > spec.maxPositions()) {
      throw new InvalidInputException(
          "the prompt has "
              + prompt.length
              + " tokens, longer than the model context of "
              + spec.maxPositions());
    }
    if (prompt.length > contextLimit) {
      throw new InvalidInputException(
          "the prompt has "
              + prompt.length
              + " tokens, more than the KV pool holds ("
              + contextLimit
              + ")");
    }
  }

  private void enqueue(Runnable command) {
    if (closed) {
      throw new ClosedException("the LLM engine is closed");
    }
    commands.add(command);
  }

  private void loop() {
    try {
      while (true) {
        Runnable command = scheduler.hasWork() ? commands.poll() : commands.take();
        while (command != null) {
          if (command == SHUTDOWN) {
            shutdown();
            return;
          }
          command.run();
          command = commands.poll();
        }
        if (scheduler.hasWork()) {
          try {
            step();
          } catch (RuntimeException e) {
            failAll(e);
          }
        }
      }
    } catch (InterruptedException e) {
      shutdown();
      Thread.currentThread().interrupt();
    }
  }

  /**
   * Whether every chunk of {@code step} goes on from its request's last known token (decoding, or
   * verifying proposals) rather than computing a prompt or recomputing after a preemption.
   */
  private static boolean decodesOnly(ScheduledStep step) {
    for (int i = 0; i < step.chunks.size(); i++) {
      if (step.chunks.get(i).startPosition() != step.requests.get(i).numTokens - 1) {
        return false;
      }
    }
    return true;
  }

  private void step() {
    long stepStart = System.nanoTime();
    ScheduledStep step = scheduler.schedule();
    if (step.isEmpty()) {
      throw new IllegalStateException("scheduler stalled with work queued");
    }
    boolean decoding = decodesOnly(step);
    long proposing = 0;
    long forwarding = 0;
    float[][] logits = null;
    int[][] greedyTokens = null;
    try {
      if (speculator != null) {
        long proposeStart = System.nanoTime();
        speculator.prefill(step);
        speculator.propose(step);
        proposing = System.nanoTime() - proposeStart;
      }
      long forwardStart = System.nanoTime();
      try {
        if (allGreedy(step)) {
          greedyTokens = runner.forwardGreedy(step.chunks);
          checkTokens(step, greedyTokens);
        }
        if (greedyTokens == null) {
          logits = runner.forward(step.chunks);
          checkLogits(step, logits);
        }
      } finally {
        forwarding = System.nanoTime() - forwardStart;
      }
    } catch (RuntimeException e) {
      scheduler.abort(step);
      for (LlmRequest r : step.requests) {
        r.finishReason = FinishReason.ERROR;
        active.remove(r.id);
        notifyError(r, e);
      }
      publishStats();
      return;
    }
    long now = System.nanoTime();
    StepOutput finite = dropNonFinite(new StepOutput(step, logits, greedyTokens));
    List<TokenEvent> events =
        scheduler.complete(finite.step(), finite.logits(), finite.greedyTokens(), now);
    steps++;
    generatedTokens += events.size();
    if (decoding) {
      decodeSteps++;
      decodeStepNanos += System.nanoTime() - stepStart;
      decodeProposeNanos += proposing;
      decodeForwardNanos += forwarding;
    }
    publishStats();
    for (TokenEvent event : events) {
      LlmRequest r = active.get(event.requestId());
      try {
        r.listener.onToken(event);
      } catch (RuntimeException e) {
        // A listener that throws loses its request, not the engine.
        scheduler.remove(r.id);
        active.remove(r.id);
        notifyError(r, e);
        continue;
      }
      if (event.isLast()) {
        active.remove(r.id);
        try {
          r.listener.onComplete(r.result(now));
        } catch (RuntimeException ignored) {
          // The request is over either way.
        }
      }
    }
  }

  /** A step with what the runner computed for it: logits, or greedy tokens. */
  private record StepOutput(ScheduledStep step, float[][] logits, int[][] greedyTokens) {}

  /**
   * Fails the requests whose logits were not finite (their blocks are freed, never cached) and
   * returns the output of the others, or {@code output} itself when all were finite.
   */
  private StepOutput dropNonFinite(StepOutput output) {
    ScheduledStep step = output.step();
    float[][] logits = output.logits();
    int[][] greedyTokens = output.greedyTokens();
    List<Integer> bad = new ArrayList<>();
    for (int i = 0; i < step.chunks.size(); i++) {
      if (step.chunks.get(i).wantLogits()
          && (greedyTokens != null ? anyNonFinite(greedyTokens[i]) : !allFinite(logits[i]))) {
        bad.add(i);
      }
    }
    if (bad.isEmpty()) {
      return output;
    }
    ScheduledStep kept = new ScheduledStep();
    List<float[]> keptLogits = new ArrayList<>();
    List<int[]> keptTokens = new ArrayList<>();
    for (int i = 0; i < step.chunks.size(); i++) {
      LlmRequest r = step.requests.get(i);
      if (bad.contains(i)) {
        scheduler.remove(r.id);
        active.remove(r.id);
        r.finishReason = FinishReason.ERROR;
        notifyError(
            r,
            new NonFiniteLogitsException(
                "request "
                    + r.id
                    + ": the logits went non-finite (NaN or infinity) after "
                    + r.numGenerated()
                    + " generated tokens; the model's weights or config are broken"));
        continue;
      }
      kept.addFrom(step, i);
      if (logits != null) {
        keptLogits.add(logits[i]);
      }
      if (greedyTokens != null) {
        keptTokens.add(greedyTokens[i]);
      }
    }
    return new StepOutput(
        kept,
        logits != null ? keptLogits.toArray(float[][]::new) : null,
        greedyTokens != null ? keptTokens.toArray(int[][]::new) : null);
  }

  private static boolean anyNonFinite(int[] tokens) {
    for (int token : tokens) {
      if (token == ModelRunner.NON_FINITE) {
        return true;
      }
    }
    return false;
  }

  private static boolean allFinite(float[] values) {
    for (float v : values) {
      if (!Float.isFinite(v)) {
        return false;
      }
    }
    return true;
  }

  /** Every request that samples this step picks the top logit with no penalty. */
  private static boolean allGreedy(ScheduledStep step) {
    for (int i = 0; i < step.chunks.size(); i++) {
      SamplingParams p = step.requests.get(i).params;
      if (step.chunks.get(i).wantLogits() && !p.isPlainArgmax()) {
        return false;
      }
    }
    return true;
  }

  private void checkTokens(ScheduledStep step, int[][] tokens) {
    if (tokens == null) {
      return;
    }
    if (tokens.length != step.chunks.size()) {
      throw new BackendException(
          "runner returned " + tokens.length + " token rows for " + step.chunks.size() + " chunks");
    }
    for (int i = 0; i < tokens.length; i++) {
      int wanted = step.chunks.get(i).numLogits();
      if (wanted == 0) {
        continue;
      }
      if (tokens[i] == null || tokens[i].length != wanted) {
        throw new BackendException("runner returned no " + wanted + " tokens for chunk " + i);
      }
      for (int token : tokens[i]) {
        if (token != ModelRunner.NON_FINITE && (token < 0 || token >= spec.vocabSize())) {
          throw new BackendException("runner returned token " + token + " for chunk " + i);
        }
      }
    }
  }

  private void checkLogits(ScheduledStep step, float[][] logits) {
    if (logits == null || logits.length != step.chunks.size()) {
      throw new BackendException(
          "runner returned "
              + (logits == null ? "null" : logits.length + " rows")
              + " for "
              + step.chunks.size()
              + " chunks");
    }
    for (int i = 0; i < logits.length; i++) {
      long wanted = (long) step.chunks.get(i).numLogits() * spec.vocabSize();
      if (wanted > 0 && (logits[i] == null || logits[i].length != wanted)) {
        throw new BackendException("runner returned no " + wanted + " logits for chunk " + i);
      }
    }
  }

  private void failAll(RuntimeException error) {
    for (LlmRequest r : scheduler.removeAll()) {
      active.remove(r.id);
      r.finishReason = FinishReason.ERROR;
      notifyError(r, error);
    }
    publishStats();
  }

  private void finishCancelled(long requestId, String why) {
    LlmRequest r = active.remove(requestId);
    if (r == null) {
      return;
    }
    scheduler.remove(requestId);
    r.finishReason = FinishReason.CANCELLED;
    publishStats();
    notifyError(r, new GenerationCancelledException(requestId, r.numGenerated(), why));
  }

  private static void notifyError(LlmRequest r, Throwable error) {
    try {
      r.listener.onError(error);
    } catch (RuntimeException ignored) {
      // The request is over either way.
    }
  }

  private void shutdown() {
    for (LlmRequest r : scheduler.removeAll()) {
      active.remove(r.id);
      r.finishReason = FinishReason.CANCELLED;
      notifyError(r, new GenerationCancelledException(r.id, r.numGenerated(), "engine closed"));
    }
    for (LlmRequest r : active.values()) {
      notifyError(r, new GenerationCancelledException(r.id, r.numGenerated(), "engine closed"));
    }
    active.clear();
    if (speculator != null) {
      speculator.close();
    }
    publishStats();
  }

  private void publishStats() {
    KvBlockManager kv = scheduler.kv();
    stats =
        new EngineStats(
            steps,
            generatedTokens,
            scheduler.preemptions(),
            kv.numUsedBlocks(),
            kv.numUsableBlocks(),
            scheduler.peakUsedBlocks(),
            scheduler.prefixHitTokens(),
            scheduler.numRunning(),
            scheduler.numWaiting(),
            speculator == null ? 0 : speculator.verifications(),
            speculator == null ? 0 : speculator.proposed(),
            speculator == null ? 0 : speculator.accepted(),
            speculator == null ? 0 : speculator.draftKvBlocksUsed(),
            decodeSteps,
            decodeStepNanos,
            decodeProposeNanos,
            decodeForwardNanos);
  }

  /** Cancels everything still queued or running and stops the engine thread. */
  @Override
  public void close() {
    if (closed) {
      return;
    }
    closed = true;
    commands.add(SHUTDOWN);
    try {
      // The loop ends after the step in flight; its runner must not be closed under it.
      thread.join(CLOSE_WAIT.toMillis());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return;
    }
    if (thread.isAlive()) {
      LOG.warn("the LLM engine's step did not end within {}; its requests stay open", CLOSE_WAIT);
      return;
    }
    // Submissions that raced with closing: end them too.
    for (Runnable command = commands.poll(); command != null; command = commands.poll()) {
      if (command != SHUTDOWN) {
        command.run();
      }
    }
    shutdown();
  }
}
