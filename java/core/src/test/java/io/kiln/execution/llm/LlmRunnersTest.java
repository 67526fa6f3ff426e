package io.kiln.execution.llm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.kiln.BackendException;
import io.kiln.DType;
import io.kiln.Device;
import io.kiln.InvalidInputException;
import io.kiln.KilnException;
import io.kiln.ModelException;
import io.kiln.model.llama.PublicLlama;
import io.kiln.model.llama.RandomLlamaModel;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import java.util.function.Supplier;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** Opening runners through the library entry point rather than by hand. */
@Timeout(120)
class LlmRunnersTest {
  private static final RunnerOptions TWO_THREADS = RunnerOptions.defaults().withThreads(2);

  @TempDir static Path shared;
  private static Path tiny;

  @BeforeAll
  static void writeTinyModel() {
    tiny = shared.resolve("tiny");
    RandomLlamaModel.write(
        RandomLlamaModel.shape("tiny"),
        7,
        DType.F32,
        tiny,
        RandomLlamaModel.DEFAULT_SHARD_BYTES,
        fraction -> {});
  }

  @Test
  void cpuRunnerGivesThePublicLlamaReferenceTokens() {
    Path model = PublicLlama.directory();
    try (ModelRunner runner = LlmRunners.open(model, Device.CPU, TWO_THREADS.withKvBlocks(4 * 12));
        LlmEngine engine = new LlmEngine(runner, SchedulerConfig.defaults())) {
      assertInstanceOf(CpuLlamaRunner.class, runner);
      for (PublicLlama.Case c : PublicLlama.cases()) {
        int[] tokens =
            engine
                .generate(c.prompt(), SamplingParams.greedy(c.greedyNewTokens().length))
                .newTokenIds();
        assertArrayEquals(c.greedyNewTokens(), tokens);
      }
    }
  }

  @Test
  void tinyRandomModelRunsAsWhenOpenedByHand() {
    int[] prompt = {1, 17, 42, 99, 3};
    int[] viaLlmRunners;
    try (ModelRunner runner = LlmRunners.open(tiny, Device.CPU, TWO_THREADS.withKvBlocks(4));
        LlmEngine engine = new LlmEngine(runner, SchedulerConfig.defaults())) {
      assertEquals(256, runner.spec().vocabSize());
      viaLlmRunners = engine.generate(prompt, SamplingParams.greedy(6)).newTokenIds();
    }
    try (ModelRunner runner = CpuLlamaRunner.open(tiny, KvPoolSpec.ofUsableBlocks(4, 16), 2);
        LlmEngine engine = new LlmEngine(runner, SchedulerConfig.defaults())) {
      assertArrayEquals(
          engine.generate(prompt, SamplingParams.greedy(6)).newTokenIds(), viaLlmRunners);
    }
    assertEquals(6, viaLlmRunners.length);
  }

  /** A target graphs its K + 1 verified positions, a draft its two-position first round. */
  @Test
  void speculationSizesTheGraphedStepsOfTargetAndDraft() {
    RunnerOptions target = TWO_THREADS.forTarget(SpeculativeConfig.ngram(6));
    assertEquals(6, target.speculativeTokens());
    assertEquals(0, TWO_THREADS.forTarget(null).speculativeTokens());
    assertEquals(1, target.forDraft().speculativeTokens());
    assertEquals(2, target.forDraft().threads(), "the other settings stay");
  }

  /**
   * DRAFT, the default, turns the int8 LM head on in drafts alone, and only where activations are
   * fp16.
   */
  @Test
  void theInt8LmHeadReachesDraftsOfF16RunnersByDefault() {
    RunnerOptions drafts = TWO_THREADS;
    assertEquals(RunnerOptions.Int8LmHead.DRAFT, drafts.int8LmHead());
    RunnerOptions off = TWO_THREADS.withInt8LmHead(RunnerOptions.Int8LmHead.OFF);
    assertEquals(RunnerOptions.Int8LmHead.OFF, off.forDraft().int8LmHead());
    assertEquals(RunnerOptions.Int8LmHead.ON, drafts.forDraft().int8LmHead());
    assertEquals(
        RunnerOptions.Int8LmHead.DRAFT,
        drafts.forTarget(SpeculativeConfig.draft(4)).int8LmHead(),
        "the target keeps its head");
    assertEquals(
        RunnerOptions.Int8LmHead.DRAFT,
        drafts.withStorage(RunnerOptions.Storage.F32).forDraft().int8LmHead(),
        "an f32 draft keeps its head");
    assertEquals(RunnerOptions.Int8LmHead.ON, RunnerOptions.Int8LmHead.parse(" On "));
    assertMessage(
        InvalidInputException.class,
        "int8 LM head must be off, draft or on, got int4",
        () -> RunnerOptions.Int8LmHead.parse("int4"));
  }

  @Test
  void theEngineCanUseExactlyTheBlocksAskedFor() {
    try (ModelRunner runner =
            LlmRunners.open(tiny, Device.CPU, TWO_THREADS.withKvBlocks(5).withBlockSize(8));
        LlmEngine engine = new LlmEngine(runner, SchedulerConfig.defaults())) {
      assertEquals(5, runner.kvPool().usableBlocks());
      assertEquals(8, runner.kvPool().blockSize());
      // 5 blocks of 8 hold 40 positions: a 39-token prompt fits, a 41-token one does not.
      engine.generate(new int[39], SamplingParams.greedy(1));
      assertEquals(5, engine.stats().kvBlocksUsable());
      assertThrows(
          InvalidInputException.class,
          () -> engine.generate(new int[41], SamplingParams.greedy(1)));
    }
  }

  @Test
  void zeroBlocksOnTheCpuSizesForMaxNumSeqsLongestSequences() {
    // tiny has 512 positions: 32 blocks of 16 per sequence, for 3 sequences.
    try (ModelRunner runner =
        LlmRunners.open(tiny, Device.CPU, TWO_THREADS.withKvBlocks(0).withMaxNumSeqs(3))) {
      assertEquals(3 * 32, runner.kvPool().usableBlocks());
    }
  }

  @Test
  void badOptionsAreOneLineInvalidInput() {
    RunnerOptions defaults = RunnerOptions.defaults();
    assertMessage(
        InvalidInputException.class,
        "kv blocks must be >= 0 (0 sizes from memory), got -1",
        () -> defaults.withKvBlocks(-1));
    assertMessage(
        InvalidInputException.class,
        "block size must be >= 1, got 0",
        () -> defaults.withBlockSize(0));
    assertMessage(
        InvalidInputException.class,
        "threads must be 0 (all cores) to 4096, got -2",
        () -> defaults.withThreads(-2));
    assertMessage(
        InvalidInputException.class,
        "storage type missing (f16 or f32)",
        () -> defaults.withStorage(null));
    assertMessage(
        InvalidInputException.class,
        "kv utilization must be in (0, 1], got 1.5",
        () -> defaults.withKvUtilization(1.5));
    assertMessage(
        InvalidInputException.class,
        "kv utilization must be in (0, 1], got 0.0",
        () -> defaults.withKvUtilization(0));
    assertMessage(
        InvalidInputException.class,
        "max num seqs must be >= 1, got 0",
        () -> defaults.withMaxNumSeqs(0));
    assertMessage(
        InvalidInputException.class,
        "max batched tokens must be >= 1, got 0",
        () -> defaults.withMaxBatchedTokens(0));
    assertMessage(
        InvalidInputException.class,
        "max model len must be >= 0 (0 for min(context, 4096)), got -1",
        () -> defaults.withMaxModelLen(-1));
    assertMessage(
        InvalidInputException.class,
        "storage must be f16 or f32, got 'bf16'",
        () -> RunnerOptions.Storage.parse("bf16"));
    assertEquals(RunnerOptions.Storage.F32, RunnerOptions.Storage.parse("fp32"));
    assertMessage(
        InvalidInputException.class,
        "a KV pool needs between 1 and 2147483646 usable blocks, got 0",
        () -> KvPoolSpec.ofUsableBlocks(0, 16));
  }

  @Test
  void badDevicesAndDirectoriesAreTyped(@TempDir Path empty) {
    assertMessage(
        InvalidInputException.class,
        "unknown device 'tpu' (auto, cpu or cuda)",
        () -> Device.parse("tpu"));
    assertMessage(
        InvalidInputException.class,
        "model directory, device and runner options are required",
        () -> LlmRunners.open(tiny, null, RunnerOptions.defaults()));
    ModelException missing =
        assertThrows(
            ModelException.class,
            () -> LlmRunners.open(empty.resolve("absent"), Device.CPU, TWO_THREADS));
    assertEquals("model directory not found: " + empty.resolve("absent"), missing.getMessage());
    ModelException noConfig =
        assertThrows(ModelException.class, () -> LlmRunners.open(empty, Device.CPU, TWO_THREADS));
    assertEquals("config.json not found: " + empty.resolve("config.json"), noConfig.getMessage());
  }

  @Test
  void cudaWithoutKilnCudaNamesIt() {
    assertEquals(
        List.of(Device.CPU), LlmRunners.providers().stream().map(p -> p.device()).toList());
    BackendException e =
        assertThrows(BackendException.class, () -> LlmRunners.open(tiny, Device.CUDA, TWO_THREADS));
    assertEquals(
        "device cuda requested but unavailable: kiln-cuda, which holds the CUDA LLM runner, is not"
            + " on the classpath",
        e.getMessage());
    try (ModelRunner runner = LlmRunners.open(tiny, Device.AUTO, TWO_THREADS.withKvBlocks(2))) {
      assertInstanceOf(CpuLlamaRunner.class, runner, "auto falls back to the CPU");
    }
  }

  @Test
  void autoTakesAnAvailableCudaProviderAndCudaSaysWhyNot() {
    RunnerProvider cpu = new CpuRunnerProvider();
    RunnerProvider cuda = new FakeCuda(Optional.empty());
    assertSame(cuda, LlmRunners.choose(Device.AUTO, List.of(cpu, cuda)));
    assertSame(cuda, LlmRunners.choose(Device.CUDA, List.of(cpu, cuda)));
    assertSame(cpu, LlmRunners.choose(Device.CPU, List.of(cpu, cuda)));
    RunnerProvider noDriver = new FakeCuda(Optional.of("no CUDA driver"));
    assertSame(cpu, LlmRunners.choose(Device.AUTO, List.of(cpu, noDriver)));
    assertMessage(
        BackendException.class,
        "device cuda requested but unavailable: no CUDA driver",
        () -> LlmRunners.choose(Device.CUDA, List.of(cpu, noDriver)));
  }

  private record FakeCuda(Optional<String> unavailableReason) implements RunnerProvider {
    @Override
    public Device device() {
      return Device.CUDA;
    }

    @Override
    public ModelRunner open(Path modelDir, RunnerOptions options) {
      throw new UnsupportedOperationException("not opened in these tests");
    }
  }

  private static void assertMessage(
      Class<? extends KilnException> type, String expected, Supplier<?> call) {
    KilnException e = assertThrows(type, call::get);
    assertEquals(expected, e.getMessage());
  }
}
