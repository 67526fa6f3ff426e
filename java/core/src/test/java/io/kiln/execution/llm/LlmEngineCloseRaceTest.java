package io.kiln.execution.llm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.kiln.ClosedException;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CountDownLatch;
import org.junit.jupiter.api.Test;

/**
 * {@link LlmEngine#close()} while 8 threads stream requests: every stream either ends with the
 * reference tokens or throws a typed exception (cancelled by the close, or refused as closed), the
 * engine thread ends, and no block is left in use.
 */
class LlmEngineCloseRaceTest {
  private static final int VOCAB = 97;
  private static final int THREADS = 8;
  private static final int ROUNDS = 100;

  @Test
  void closeWhileStreamsAreInFlight() throws Exception {
    Random rnd = new Random(System.nanoTime());
    CloseRaceStreams streams = new CloseRaceStreams();
    for (int round = 0; round < ROUNDS; round++) {
      ToyModelRunner runner = new ToyModelRunner(VOCAB, 256, 200, 4, -1);
      LlmEngine engine = new LlmEngine(runner, SchedulerConfig.defaults());
      CountDownLatch started = new CountDownLatch(THREADS);
      List<Thread> threads = new ArrayList<>();
      for (int t = 0; t < THREADS; t++) {
        int[] prompt = {1 + t, 2 + round % 50, 3};
        int[] expected = ToyModelRunner.reference(prompt, 6, VOCAB, -1);
        Thread thread =
            new Thread(() -> streams.streamUntilClosed(engine, prompt, expected, started));
        threads.add(thread);
        thread.start();
      }
      started.await();
      Thread.sleep(rnd.nextInt(3));
      engine.close();
      for (Thread thread : threads) {
        thread.join(30_000);
        assertTrue(!thread.isAlive(), "a stream hangs after close");
      }
      assertTrue(streams.wrong.isEmpty(), "round " + round + ": " + streams.wrong);
      assertThrows(
          ClosedException.class, () -> engine.stream(new int[] {1}, SamplingParams.greedy(2)));
      assertEquals(0, engine.stats().kvBlocksUsed(), "blocks left in use after close");
      engine.close();
      runner.close();
    }
    assertEquals(THREADS * ROUNDS, streams.cut.get(), "every caller ends on the close");
    assertTrue(
        streams.finished.get() > 0, "no stream finished before close in " + ROUNDS + " rounds");
  }
}
