package io.kiln.execution.llm.gpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.kiln.ClosedException;
import io.kiln.cuda.Cuda;
import io.kiln.cuda.RequiresGpu;
import io.kiln.execution.llm.CloseRaceStreams;
import io.kiln.execution.llm.LlmEngine;
import io.kiln.execution.llm.SamplingParams;
import io.kiln.execution.llm.SchedulerConfig;
import io.kiln.model.llama.PublicLlama;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CountDownLatch;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Closing the engine and then the CUDA runner while 8 threads stream: every stream ends with the
 * reference tokens or a typed exception after a correct prefix, no stream hangs, and the device
 * memory of every round comes back.
 */
@Tag("gpu")
@RequiresGpu
@Timeout(300)
class GpuCloseRaceTest {
  private static final int THREADS = 8;
  private static final int ROUNDS = 20;
  private static final int NEW_TOKENS = 16;
  private static Path model;
  private static List<PublicLlama.Case> cases;

  @BeforeAll
  static void load() {
    GpuTests.assumeGpu();
    model = PublicLlama.directory();
    cases = PublicLlama.cases();
  }

  @Test
  void closeWhileStreamsAreInFlightOnTheGpu() throws Exception {
    GpuRunnerOptions options =
        GpuRunnerOptions.defaults()
            .withStorage(StorageType.F32)
            .withKvBlocks(1 + THREADS * 8)
            .withMaxNumSeqs(THREADS)
            .withMaxBatchedTokens(256);
    // A first open loads cuBLAS and the kernels once; the baseline is taken after it.
    GpuLlamaRunner.open(model, options).close();
    long baseline = Cuda.memInfo()[0];
    Random rnd = new Random(System.nanoTime());
    CloseRaceStreams streams = new CloseRaceStreams();
    for (int round = 0; round < ROUNDS; round++) {
      GpuLlamaRunner runner = GpuLlamaRunner.open(model, options);
      LlmEngine engine = new LlmEngine(runner, new SchedulerConfig(THREADS, 256, 0, true));
      CountDownLatch started = new CountDownLatch(THREADS);
      List<Thread> threads = new ArrayList<>();
      for (int t = 0; t < THREADS; t++) {
        PublicLlama.Case c = cases.get(t % cases.size());
        int[] expected = Arrays.copyOf(c.greedyNewTokens(), NEW_TOKENS);
        Thread thread =
            new Thread(() -> streams.streamUntilClosed(engine, c.prompt(), expected, started));
        threads.add(thread);
        thread.start();
      }
      started.await();
      Thread.sleep(rnd.nextInt(40));
      engine.close();
      runner.close();
      for (Thread thread : threads) {
        thread.join(30_000);
        assertTrue(!thread.isAlive(), "a stream hangs after close");
      }
      assertTrue(streams.wrong.isEmpty(), "round " + round + ": " + streams.wrong);
      assertThrows(
          ClosedException.class, () -> engine.stream(new int[] {1}, SamplingParams.greedy(2)));
      assertEquals(0, engine.stats().kvBlocksUsed(), "blocks left in use after close");
    }
    assertEquals(THREADS * ROUNDS, streams.cut.get(), "every caller ends on the close");
    assertTrue(
        streams.finished.get() > 0, "no stream finished before close in " + ROUNDS + " rounds");
    long after = Cuda.memInfo()[0];
    assertTrue(
        Math.abs(after - baseline) <= (8L << 20),
        "free device memory " + after + " after " + ROUNDS + " rounds, " + baseline + " before");
  }
}
