package io.kiln.execution.llm.gpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.kiln.cuda.Cuda;
import io.kiln.cuda.RequiresGpu;
import io.kiln.execution.llm.CloseRaceStreams;
import io.kiln.execution.llm.LlmEngine;
import io.kiln.execution.llm.SchedulerConfig;
import io.kiln.model.llama.PublicLlama;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
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
    CloseRaceStreams streams = new CloseRaceStreams();
    List<int[]> prompts = new ArrayList<>();
    List<int[]> expected = new ArrayList<>();
    for (int t = 0; t < THREADS; t++) {
      PublicLlama.Case c = cases.get(t % cases.size());
      prompts.add(c.prompt());
      expected.add(Arrays.copyOf(c.greedyNewTokens(), NEW_TOKENS));
    }
    for (int round = 0; round < ROUNDS; round++) {
      GpuLlamaRunner runner = GpuLlamaRunner.open(model, options);
      LlmEngine engine = new LlmEngine(runner, new SchedulerConfig(THREADS, 256, 0, true));
      Runnable closeBoth =
          () -> {
            engine.close();
            runner.close();
          };
      streams.round(engine, prompts, expected, 40, closeBoth, round);
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
