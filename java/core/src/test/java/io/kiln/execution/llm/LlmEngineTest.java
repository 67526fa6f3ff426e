package io.kiln.execution.llm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.kiln.InvalidInputException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Flow;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Timeout(60)
class LlmEngineTest {
  private static final int VOCAB = 61;

  private static int[] prompt(long seed, int length) {
    SplittableRandom rnd = new SplittableRandom(seed);
    int[] p = new int[length];
    for (int i = 0; i < length; i++) {
      p[i] = rnd.nextInt(VOCAB);
    }
    return p;
  }

  private static int[] tokens(List<TokenEvent> events) {
    return events.stream().mapToInt(TokenEvent::tokenId).toArray();
  }

  private static void awaitIdle(LlmEngine engine) throws InterruptedException {
    for (int i = 0; i < 500; i++) {
      EngineStats s = engine.stats();
      if (s.running() == 0 && s.waiting() == 0 && s.kvBlocksUsed() == 0) {
        return;
      }
      Thread.sleep(10);
    }
    throw new AssertionError("engine did not go idle: " + engine.stats());
  }

  @Test
  void requestsFromManyThreadsEachGetTheirOwnTokens() throws Exception {
    ToyModelRunner runner = new ToyModelRunner(VOCAB, 256, 40, 4, -1);
    try (LlmEngine engine = new LlmEngine(runner, new SchedulerConfig(6, 32, 0, true))) {
      ExecutorService pool = Executors.newFixedThreadPool(8);
      List<Future<GenerationResult>> futures = new ArrayList<>();
      List<int[]> prompts = new ArrayList<>();
      for (int i = 0; i < 24; i++) {
        int[] p = prompt(i, 1 + i * 3 % 37);
        prompts.add(p);
        futures.add(pool.submit(() -> engine.generate(p, SamplingParams.greedy(16))));
      }
      for (int i = 0; i < futures.size(); i++) {
        GenerationResult r = futures.get(i).get(30, TimeUnit.SECONDS);
        assertArrayEquals(ToyModelRunner.reference(prompts.get(i), 16, VOCAB, -1), r.newTokenIds());
        assertArrayEquals(prompts.get(i), r.promptIds());
        assertEquals(FinishReason.LENGTH, r.finishReason());
        RequestMetrics m = r.metrics();
        assertEquals(16, m.generatedTokens());
        assertEquals(prompts.get(i).length, m.promptTokens());
        assertEquals(15, m.interTokenMillis().length);
        assertTrue(m.ttftMillis() >= 0 && m.ttftMillis() <= m.totalMillis());
      }
      pool.shutdown();
      awaitIdle(engine);
      EngineStats stats = engine.stats();
      assertEquals(24 * 16, stats.generatedTokens());
      // Whether the 39 blocks ran out (preemptions) depends on arrival timing; SchedulerTest
      // covers preemption deterministically.
      assertTrue(stats.peakKvBlocksUsed() <= 39);
    }
  }

  /** A 20-token prompt in chunks of 8 takes three steps; the nine that decode are timed. */
  @Test
  void stepTimesCoverDecodeStepsOnly() throws Exception {
    ToyModelRunner runner = new ToyModelRunner(VOCAB, 256, 40, 4, -1);
    runner.stepDelayMillis = 2;
    try (LlmEngine engine = new LlmEngine(runner, new SchedulerConfig(1, 8, 0, false))) {
      int[] p = prompt(5, 20);
      assertArrayEquals(
          ToyModelRunner.reference(p, 10, VOCAB, -1),
          engine.generate(p, SamplingParams.greedy(10)).newTokenIds());
      EngineStats stats = engine.stats();
      assertEquals(12, stats.steps());
      assertEquals(9, stats.decodeSteps());
      assertTrue(stats.decodeForwardNanos() >= 9 * 2_000_000L, stats.toString());
      assertTrue(stats.decodeStepNanos() >= stats.decodeForwardNanos(), stats.toString());
      assertEquals(0, stats.decodeProposeNanos(), "nothing speculates");
    }
  }

  @Test
  void nonFiniteLogitsFailTheirRequestAndSpareTheOthers() throws Exception {
    ToyModelRunner runner = new ToyModelRunner(VOCAB, 256, 64, 4, -1);
    int[] healthy = prompt(3, 6);
    int[] broken = prompt(4, 6);
    runner.poisonToken = broken[0];
    assertTrue(healthy[0] != broken[0]);
    try (LlmEngine engine = new LlmEngine(runner, SchedulerConfig.defaults())) {
      for (SamplingParams params :
          List.of(
              SamplingParams.greedy(5),
              SamplingParams.builder().temperature(0.8).maxNewTokens(5).seed(1).build())) {
        GenerationHandle bad = engine.submit(broken, params, event -> {});
        GenerationHandle good = engine.submit(healthy, SamplingParams.greedy(5), event -> {});
        ExecutionException e =
            assertThrows(ExecutionException.class, () -> bad.result().get(10, TimeUnit.SECONDS));
        assertInstanceOf(NonFiniteLogitsException.class, e.getCause());
        assertTrue(e.getCause().getMessage().contains("non-finite"), e.getCause().getMessage());
        assertArrayEquals(
            ToyModelRunner.reference(healthy, 5, VOCAB, -1),
            good.result().get(10, TimeUnit.SECONDS).newTokenIds());
      }
      assertEquals(0, engine.stats().kvBlocksUsed(), "the failed request's blocks are freed");
    }
  }

  @Test
  void callbackSeesTokensInOrderThenTheResult() throws Exception {
    ToyModelRunner runner = new ToyModelRunner(VOCAB, 256, 64, 4, -1);
    try (LlmEngine engine = new LlmEngine(runner, SchedulerConfig.defaults())) {
      List<TokenEvent> events = Collections.synchronizedList(new ArrayList<>());
      CompletableFuture<GenerationResult> done = new CompletableFuture<>();
      int[] p = prompt(9, 12);
      GenerationHandle handle =
          engine.submit(
              p,
              SamplingParams.greedy(10),
              new TokenListener() {
                @Override
                public void onToken(TokenEvent event) {
                  events.add(event);
                }

                @Override
                public void onComplete(GenerationResult result) {
                  done.complete(result);
                }
              });
      GenerationResult result = done.get(10, TimeUnit.SECONDS);
      assertSame(result, handle.result().get());
      assertArrayEquals(result.newTokenIds(), tokens(events));
      assertArrayEquals(ToyModelRunner.reference(p, 10, VOCAB, -1), result.newTokenIds());
      for (int i = 0; i < events.size(); i++) {
        assertEquals(i, events.get(i).index());
        assertEquals(handle.requestId(), events.get(i).requestId());
        assertEquals(i == 9 ? FinishReason.LENGTH : null, events.get(i).finishReason());
      }
    }
  }

  @Test
  void stopTokenEndsTheRequestAndIsKept() throws Exception {
    int[] p = prompt(10, 5);
    int[] free = ToyModelRunner.reference(p, 12, VOCAB, -1);
    int stop = free[4];
    int firstStop = 0;
    while (free[firstStop] != stop) {
      firstStop++;
    }
    ToyModelRunner runner = new ToyModelRunner(VOCAB, 256, 64, 4, stop);
    try (LlmEngine engine = new LlmEngine(runner, SchedulerConfig.defaults())) {
      GenerationResult eos = engine.generate(p, SamplingParams.greedy(12));
      assertEquals(FinishReason.STOP, eos.finishReason());
      assertArrayEquals(java.util.Arrays.copyOf(free, firstStop + 1), eos.newTokenIds());
      GenerationResult ignored =
          engine.generate(
              p, SamplingParams.builder().temperature(0).maxNewTokens(12).ignoreEos(true).build());
      assertArrayEquals(free, ignored.newTokenIds());
      GenerationResult explicit =
          engine.generate(
              p,
              SamplingParams.builder()
                  .temperature(0)
                  .maxNewTokens(12)
                  .ignoreEos(true)
                  .stopTokenIds(free[2])
                  .build());
      assertEquals(FinishReason.STOP, explicit.finishReason());
      assertEquals(free[2], explicit.newTokenIds()[explicit.newTokenIds().length - 1]);
    }
  }

  @Test
  void cancelledStreamEndsWithATypedErrorAndFreesItsBlocks() throws Exception {
    ToyModelRunner runner = new ToyModelRunner(VOCAB, 256, 64, 4, -1);
    runner.stepDelayMillis = 3;
    try (LlmEngine engine = new LlmEngine(runner, SchedulerConfig.defaults())) {
      int[] other = prompt(12, 6);
      GenerationHandle bystander = engine.submit(other, SamplingParams.greedy(60), event -> {});
      TokenStream stream = engine.stream(prompt(11, 20), SamplingParams.greedy(200));
      List<TokenEvent> seen = new ArrayList<>();
      for (int i = 0; i < 3; i++) {
        seen.add(stream.next());
      }
      assertTrue(engine.stats().kvBlocksUsed() > 0);
      stream.handle().cancel();
      GenerationCancelledException e =
          assertThrows(
              GenerationCancelledException.class,
              () -> {
                while (stream.hasNext()) {
                  seen.add(stream.next());
                }
              });
      assertEquals(stream.handle().requestId(), e.requestId());
      assertTrue(seen.size() < 200);
      assertThrows(GenerationCancelledException.class, () -> stream.handle().result().get());
      for (TokenEvent t : seen) {
        assertNull(t.finishReason());
      }

      // The other request is untouched by the cancellation.
      GenerationResult r = bystander.result().get(20, TimeUnit.SECONDS);
      assertArrayEquals(ToyModelRunner.reference(other, 60, VOCAB, -1), r.newTokenIds());
      awaitIdle(engine);
      stream.handle().cancel(); // cancelling a finished request does nothing
      assertEquals(0, engine.stats().kvBlocksUsed());
    }
  }

  @Test
  void blockingCallThrowsWhenCancelled() throws Exception {
    ToyModelRunner runner = new ToyModelRunner(VOCAB, 256, 64, 4, -1);
    runner.stepDelayMillis = 5;
    try (LlmEngine engine = new LlmEngine(runner, SchedulerConfig.defaults())) {
      AtomicReference<GenerationHandle> handle = new AtomicReference<>();
      CountDownLatch started = new CountDownLatch(1);
      GenerationHandle h =
          engine.submit(prompt(1, 4), SamplingParams.greedy(200), event -> started.countDown());
      handle.set(h);
      started.await();
      h.cancel();
      assertThrows(
          GenerationCancelledException.class,
          () -> {
            try {
              h.result().join();
            } catch (java.util.concurrent.CompletionException e) {
              throw e.getCause();
            }
          });
    }
  }

  @Test
  void publisherHonoursDemandAndCompletes() throws Exception {
    ToyModelRunner runner = new ToyModelRunner(VOCAB, 256, 64, 4, -1);
    try (LlmEngine engine = new LlmEngine(runner, SchedulerConfig.defaults())) {
      int[] p = prompt(13, 7);
      List<TokenEvent> got = Collections.synchronizedList(new ArrayList<>());
      CompletableFuture<Void> done = new CompletableFuture<>();
      AtomicReference<Flow.Subscription> sub = new AtomicReference<>();
      Flow.Publisher<TokenEvent> publisher = engine.publisher(p, SamplingParams.greedy(9));
      publisher.subscribe(
          new Flow.Subscriber<>() {
            @Override
            public void onSubscribe(Flow.Subscription s) {
              sub.set(s);
              s.request(2);
            }

            @Override
            public void onNext(TokenEvent item) {
              got.add(item);
            }

            @Override
            public void onError(Throwable t) {
              done.completeExceptionally(t);
            }

            @Override
            public void onComplete() {
              done.complete(null);
            }
          });
      // With demand 2 only two tokens arrive, however long we wait.
      for (int i = 0; i < 1000 && got.size() < 2; i++) {
        Thread.sleep(10);
      }
      Thread.sleep(100);
      assertEquals(2, got.size());
      sub.get().request(100);
      done.get(10, TimeUnit.SECONDS);
      assertArrayEquals(ToyModelRunner.reference(p, 9, VOCAB, -1), tokens(got));

      // A second subscriber is refused.
      CompletableFuture<Throwable> refused = new CompletableFuture<>();
      publisher.subscribe(
          new Flow.Subscriber<>() {
            @Override
            public void onSubscribe(Flow.Subscription s) {}

            @Override
            public void onNext(TokenEvent item) {}

            @Override
            public void onError(Throwable t) {
              refused.complete(t);
            }

            @Override
            public void onComplete() {}
          });
      assertInstanceOf(IllegalStateException.class, refused.get(5, TimeUnit.SECONDS));
    }
  }

  @Test
  void cancellingTheSubscriptionCancelsTheRequest() throws Exception {
    ToyModelRunner runner = new ToyModelRunner(VOCAB, 256, 64, 4, -1);
    runner.stepDelayMillis = 2;
    try (LlmEngine engine = new LlmEngine(runner, SchedulerConfig.defaults())) {
      CountDownLatch two = new CountDownLatch(2);
      List<TokenEvent> got = Collections.synchronizedList(new ArrayList<>());
      engine
          .publisher(prompt(14, 5), SamplingParams.greedy(200))
          .subscribe(
              new Flow.Subscriber<>() {
                Flow.Subscription s;

                @Override
                public void onSubscribe(Flow.Subscription s) {
                  this.s = s;
                  s.request(Long.MAX_VALUE);
                }

                @Override
                public void onNext(TokenEvent item) {
                  got.add(item);
                  two.countDown();
                  if (got.size() == 2) {
                    s.cancel();
                  }
                }

                @Override
                public void onError(Throwable t) {}

                @Override
                public void onComplete() {}
              });
      two.await();
      awaitIdle(engine);
      Thread.sleep(50);
      assertEquals(2, got.size());
      assertTrue(engine.stats().generatedTokens() < 200);
    }
  }

  @Test
  void badRequestsAreTypedErrors() {
    ToyModelRunner runner = new ToyModelRunner(VOCAB, 64, 32, 4, -1);
    try (LlmEngine engine = new LlmEngine(runner, SchedulerConfig.defaults())) {
      SamplingParams ok = SamplingParams.greedy(4);
      assertThrows(InvalidInputException.class, () -> engine.generate(new int[0], ok));
      assertThrows(InvalidInputException.class, () -> engine.generate(null, ok));
      assertThrows(InvalidInputException.class, () -> engine.generate(new int[] {1, VOCAB}, ok));
      assertThrows(InvalidInputException.class, () -> engine.generate(new int[] {-1}, ok));
      InvalidInputException tooLong =
          assertThrows(InvalidInputException.class, () -> engine.generate(prompt(1, 65), ok));
      assertTrue(tooLong.getMessage().contains("context"), tooLong.getMessage());
      assertThrows(
          InvalidInputException.class,
          () -> engine.generate(prompt(1, 3), SamplingParams.builder().temperature(-1).build()));
      assertThrows(
          InvalidInputException.class,
          () -> engine.stream(prompt(1, 3), SamplingParams.builder().topP(0).build()));
      assertThrows(
          InvalidInputException.class,
          () -> engine.publisher(prompt(1, 3), SamplingParams.builder().topK(-2).build()));
      assertThrows(
          InvalidInputException.class,
          () ->
              engine.submit(
                  prompt(1, 3), SamplingParams.builder().maxNewTokens(0).build(), e -> {}));
      // A prompt filling the context still gets one token; then the context is full.
      GenerationResult full = engine.generate(prompt(2, 64), SamplingParams.greedy(10));
      assertEquals(1, full.newTokenIds().length);
      assertEquals(FinishReason.LENGTH, full.finishReason());
      GenerationResult near = engine.generate(prompt(2, 60), SamplingParams.greedy(10));
      assertEquals(5, near.newTokenIds().length);
    }
  }

  @Test
  void promptLargerThanTheBlockBudgetIsRefused() {
    ToyModelRunner runner = new ToyModelRunner(VOCAB, 256, 64, 4, -1);
    try (LlmEngine engine = new LlmEngine(runner, SchedulerConfig.defaults().withMaxKvBlocks(5))) {
      assertThrows(
          InvalidInputException.class,
          () -> engine.generate(prompt(1, 17), SamplingParams.greedy(2)));
      assertEquals(
          2, engine.generate(prompt(1, 15), SamplingParams.greedy(2)).newTokenIds().length);
    }
  }

  @Test
  void runnerFailureFailsItsRequestsAndTheEngineGoesOn() throws Exception {
    ToyModelRunner runner = new ToyModelRunner(VOCAB, 256, 64, 4, -1);
    try (LlmEngine engine = new LlmEngine(runner, SchedulerConfig.defaults())) {
      IllegalStateException boom = new IllegalStateException("device lost");
      runner.failNext = boom;
      ExecutionException e =
          assertThrows(
              ExecutionException.class,
              () ->
                  engine
                      .submit(prompt(3, 5), SamplingParams.greedy(4), x -> {})
                      .result()
                      .get(10, TimeUnit.SECONDS));
      assertSame(boom, e.getCause());
      int[] p = prompt(4, 5);
      assertArrayEquals(
          ToyModelRunner.reference(p, 4, VOCAB, -1),
          engine.generate(p, SamplingParams.greedy(4)).newTokenIds());
      awaitIdle(engine);
    }
  }

  @Test
  void closingCancelsWhatIsLeftAndRefusesNewWork() throws Exception {
    ToyModelRunner runner = new ToyModelRunner(VOCAB, 256, 64, 4, -1);
    runner.stepDelayMillis = 5;
    LlmEngine engine = new LlmEngine(runner, SchedulerConfig.defaults());
    List<GenerationHandle> handles = new ArrayList<>();
    for (int i = 0; i < 5; i++) {
      handles.add(engine.submit(prompt(i, 4), SamplingParams.greedy(200), e -> {}));
    }
    Thread.sleep(30);
    engine.close();
    for (GenerationHandle h : handles) {
      assertThrows(GenerationCancelledException.class, () -> h.result().get(5, TimeUnit.SECONDS));
    }
    assertThrows(
        io.kiln.ClosedException.class,
        () -> engine.generate(prompt(1, 3), SamplingParams.greedy(2)));
    engine.close();
  }

  @Test
  void randomSubmitsAndCancelsFromManyThreadsLeakNothing() throws Exception {
    ToyModelRunner runner = new ToyModelRunner(VOCAB, 256, 24, 4, -1);
    try (LlmEngine engine = new LlmEngine(runner, new SchedulerConfig(6, 20, 0, true))) {
      ExecutorService pool = Executors.newFixedThreadPool(6);
      List<Future<int[]>> outcomes = new ArrayList<>();
      for (int t = 0; t < 6; t++) {
        long threadSeed = t;
        for (int i = 0; i < 15; i++) {
          long seed = threadSeed * 100 + i;
          outcomes.add(
              pool.submit(
                  () -> {
                    SplittableRandom rnd = new SplittableRandom(seed);
                    int[] p = prompt(seed % 7, 1 + rnd.nextInt(30)); // shared prefixes
                    int n = 1 + rnd.nextInt(20);
                    GenerationHandle h = engine.submit(p, SamplingParams.greedy(n), e -> {});
                    if (rnd.nextInt(3) == 0) {
                      Thread.sleep(rnd.nextInt(5));
                      h.cancel();
                    }
                    try {
                      int[] got = h.result().get(30, TimeUnit.SECONDS).newTokenIds();
                      assertArrayEquals(ToyModelRunner.reference(p, n, VOCAB, -1), got);
                      return got;
                    } catch (GenerationCancelledException e) {
                      return null;
                    }
                  }));
        }
      }
      int finished = 0;
      for (Future<int[]> f : outcomes) {
        if (f.get(60, TimeUnit.SECONDS) != null) {
          finished++;
        }
      }
      pool.shutdown();
      assertTrue(finished >= 45, "most requests are not cancelled: " + finished);
      awaitIdle(engine);
      assertEquals(0, engine.stats().kvBlocksUsed());
    }
  }

  @Test
  void nonPositiveDemandFailsTheSubscription() throws Exception {
    ToyModelRunner runner = new ToyModelRunner(VOCAB, 256, 64, 4, -1);
    runner.stepDelayMillis = 2;
    try (LlmEngine engine = new LlmEngine(runner, SchedulerConfig.defaults())) {
      CompletableFuture<Throwable> error = new CompletableFuture<>();
      engine
          .publisher(prompt(15, 4), SamplingParams.greedy(100))
          .subscribe(
              new Flow.Subscriber<>() {
                @Override
                public void onSubscribe(Flow.Subscription s) {
                  s.request(0);
                }

                @Override
                public void onNext(TokenEvent item) {
                  error.completeExceptionally(new AssertionError("no demand, yet " + item));
                }

                @Override
                public void onError(Throwable t) {
                  error.complete(t);
                }

                @Override
                public void onComplete() {
                  error.completeExceptionally(new AssertionError("completed"));
                }
              });
      assertInstanceOf(IllegalArgumentException.class, error.get(10, TimeUnit.SECONDS));
      awaitIdle(engine);
    }
  }
}
