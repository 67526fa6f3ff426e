package io.kiln.execution.llm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.kiln.ClosedException;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CancellationException;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Callers that stream one greedy prompt again and again until the engine closes, for close-race
 * tests on any runner. A stream either finishes with the expected tokens or ends in a typed
 * exception (refused as closed, or cut short by the close) after a correct prefix; anything else is
 * collected in {@link #wrong}.
 */
public final class CloseRaceStreams {
  /** Streams that finished with every expected token. */
  public final AtomicLong finished = new AtomicLong();

  /** Callers that ended on the close. */
  public final AtomicLong cut = new AtomicLong();

  /** Wrong tokens and unexpected exceptions. */
  public final ConcurrentLinkedQueue<Throwable> wrong = new ConcurrentLinkedQueue<>();

  private final Random random = new Random(System.nanoTime());

  /**
   * One round: a caller per prompt streams it until {@code close} runs, after a random delay of up
   * to {@code maxDelayMillis}; then no caller hangs, none saw a wrong token or an unexpected
   * exception, the engine refuses new streams and holds no block.
   */
  public void round(
      LlmEngine engine,
      List<int[]> prompts,
      List<int[]> expected,
      int maxDelayMillis,
      Runnable close,
      int round)
      throws InterruptedException {
    CountDownLatch started = new CountDownLatch(prompts.size());
    List<Thread> threads = new ArrayList<>();
    for (int t = 0; t < prompts.size(); t++) {
      int[] prompt = prompts.get(t);
      int[] tokens = expected.get(t);
      Thread thread = new Thread(() -> streamUntilClosed(engine, prompt, tokens, started));
      threads.add(thread);
      thread.start();
    }
    started.await();
    Thread.sleep(random.nextInt(maxDelayMillis));
    close.run();
    for (Thread thread : threads) {
      thread.join(30_000);
      assertTrue(!thread.isAlive(), "a stream hangs after close");
    }
    assertTrue(wrong.isEmpty(), "round " + round + ": " + wrong);
    assertThrows(
        ClosedException.class, () -> engine.stream(new int[] {1}, SamplingParams.greedy(2)));
    assertEquals(0, engine.stats().kvBlocksUsed(), "blocks left in use after close");
  }

  /** Streams {@code prompt} for {@code expected.length} tokens until the engine stops it. */
  public void streamUntilClosed(
      LlmEngine engine, int[] prompt, int[] expected, CountDownLatch started) {
    started.countDown();
    while (true) {
      List<Integer> tokens = new ArrayList<>();
      try (TokenStream stream = engine.stream(prompt, SamplingParams.greedy(expected.length))) {
        stream.forEachRemaining(e -> tokens.add(e.tokenId()));
        assertArrayEquals(expected, tokens.stream().mapToInt(Integer::intValue).toArray());
        finished.incrementAndGet();
      } catch (ClosedException | CancellationException e) {
        for (int i = 0; i < tokens.size(); i++) {
          if (tokens.get(i) != expected[i]) {
            wrong.add(new AssertionError("token " + i + " before the close was wrong"));
          }
        }
        cut.incrementAndGet();
        return;
      } catch (Throwable t) {
        wrong.add(t);
        return;
      }
    }
  }
}
