package io.kiln.execution.llm.gpu;

import static io.kiln.execution.llm.gpu.GpuTests.ints;
import static io.kiln.execution.llm.gpu.GpuTests.poisoned;
import static io.kiln.execution.llm.gpu.GpuTests.random;
import static io.kiln.execution.llm.gpu.GpuTests.read;
import static io.kiln.execution.llm.gpu.GpuTests.store;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.kiln.BackendException;
import io.kiln.InvalidInputException;
import io.kiln.cuda.Cuda;
import io.kiln.cuda.RequiresGpu;
import io.kiln.execution.llm.GenerationResult;
import io.kiln.execution.llm.LlmEngine;
import io.kiln.execution.llm.SchedulerConfig;
import io.kiln.execution.llm.SequenceChunk;
import io.kiln.execution.llm.SpeculativeConfig;
import io.kiln.model.llama.LlamaConfig;
import io.kiln.model.llama.PublicLlama;
import io.kiln.model.llama.WeightQuantizer;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The int8 LM head of a draft model: the kernel against a double-precision sum over the same codes,
 * and a runner that keeps one against the fp16 head and as the draft of an engine.
 */
@Tag("gpu")
@RequiresGpu
@Timeout(300)
class GpuInt8LmHeadTest {
  private static final int NEW_TOKENS = 48;
  private static CudaModule module;

  @BeforeAll
  static void load() {
    GpuTests.assumeGpu();
    module = CudaModule.load();
  }

  @AfterAll
  static void unload() {
    if (module != null) {
      module.close();
    }
  }

  /**
   * logits[t][j] = scale[j] (x[t] . codes[j]) within fp32 rounding of the sum, for one-row and
   * multi-row builds and rows split over 2 and 4 warps (8192 and 16384 codes), every logit written
   * (the output starts as NaN) and each row's key naming its first largest logit; planted rows 5
   * and 9 tie for row 0, which the key breaks to 5.
   */
  @ParameterizedTest(name = "m={0} in={1} vocab={2}")
  @CsvSource({"1, 2048, 32000", "1, 16, 5000", "3, 8192, 1000", "8, 16384, 77", "5, 128, 513"})
  void logitsAreTheScaledCodeProductsAndKeysTheirFirstLargest(int m, int in, int vocab) {
    Kernels k = new Kernels(module, StorageType.F16, 64);
    SplittableRandom rnd = new SplittableRandom(31L * m + in + vocab);
    float[] weights = random(rnd, vocab * in, 0.05);
    float[] xs = random(rnd, m * in, 1);
    for (int i = 0; i < in; i++) {
      weights[5 * in + i] = 0.2f * Math.signum(xs[i]);
      weights[9 * in + i] = 0.2f * Math.signum(xs[i]);
    }
    float[] scales = new float[vocab];
    byte[] codes = WeightQuantizer.int8Codes(weights, vocab, in, scales);
    int sms = Cuda.multiprocessors();
    try (GpuTests.Stored x = store(k, StorageType.F16, xs);
        DeviceBuffer codeBuffer = new DeviceBuffer(codes.length);
        DeviceBuffer scaleBuffer = GpuTests.floats(scales);
        DeviceBuffer logits = poisoned(StorageType.F32, (long) m * vocab);
        DeviceBuffer keys = ints(new int[2 * m])) {
      codeBuffer.upload(codes);
      k.skinnyGemmLogitsInt8(
          null,
          sms,
          m,
          in,
          vocab,
          logits.address(),
          x.buffer().address(),
          codeBuffer.address(),
          scaleBuffer.address(),
          keys.address());
      float[] got = read(StorageType.F32, logits, m * vocab);
      int[] words = keys.downloadInts(2 * m);
      float[] xv = x.values();
      String what = "int8 logits " + m + "x" + in + "x" + vocab;
      for (int t = 0; t < m; t++) {
        int best = 0;
        for (int j = 0; j < vocab; j++) {
          double sum = 0;
          double magnitude = 0;
          for (int e = 0; e < in; e++) {
            double term = (double) xv[t * in + e] * codes[j * in + e];
            sum += term;
            magnitude += Math.abs(term);
          }
          double expected = sum * scales[j];
          double bound = 1e-5 * magnitude * scales[j] + 1e-30;
          float value = got[t * vocab + j];
          assertTrue(
              Math.abs(value - expected) <= bound,
              what + ": logit [" + t + "][" + j + "] " + value + " against " + expected);
          if (value > got[t * vocab + best]) {
            best = j;
          }
        }
        long key = (long) words[2 * t + 1] << 32 | (words[2 * t] & 0xffffffffL);
        assertEquals(best, StepLayout.greedyToken(key), what + ": greedy token of row " + t);
      }
      assertEquals(got[5], got[9], what + ": the planted tie");
      assertEquals(5, StepLayout.greedyToken((long) words[1] << 32 | (words[0] & 0xffffffffL)));
    }
    assertThrows(
        BackendException.class,
        () -> k.skinnyGemmLogitsInt8(null, sms, 1, 24, 8, 0, 0, 0, 0, 0),
        "rows not a multiple of 16 codes");
    Kernels f32 = new Kernels(module, StorageType.F32, 64);
    assertThrows(
        BackendException.class,
        () -> f32.skinnyGemmLogitsInt8(null, sms, 1, 32, 8, 0, 0, 0, 0, 0),
        "fp32 activations");
  }

  /**
   * A runner with the int8 head: the one-row steps' logits move from the fp16 head's by about the
   * int8 step (but move: the int8 path ran), its device buffers grow by exactly the codes and
   * scales, and an engine drafting with it gives the tokens of plain decoding on the same target.
   */
  @Test
  void aDraftWithTheInt8HeadKeepsGreedyOutputExact() throws Exception {
    Path model = PublicLlama.directory();
    List<PublicLlama.Case> cases = PublicLlama.cases();
    GpuRunnerOptions base =
        GpuRunnerOptions.defaults().withKvBlocks(64).withMaxNumSeqs(8).withMaxBatchedTokens(256);
    List<GenerationResult> plainResults;
    try (GpuLlamaRunner fp16 = GpuLlamaRunner.open(model, base);
        GpuLlamaRunner int8 = GpuLlamaRunner.open(model, base.withInt8LmHead(true))) {
      int vocab = fp16.spec().vocabSize();
      int hidden = LlamaConfig.load(model).hiddenSize();
      assertEquals(
          (long) vocab * hidden + 4L * vocab,
          int8.deviceBytes() - fp16.deviceBytes(),
          "the int8 head's codes and scales");
      for (int i = 0; i < cases.size(); i++) {
        PublicLlama.Case c = cases.get(i);
        float[] reference = decodeStepLogits(fp16, c);
        float[] quantized = decodeStepLogits(int8, c);
        double num = 0;
        double den = 0;
        for (int j = 0; j < vocab; j++) {
          double d = quantized[j] - reference[j];
          num += d * d;
          den += (double) reference[j] * reference[j];
        }
        double relL2 = Math.sqrt(num / den);
        assertTrue(relL2 > 1e-5 && relL2 < 3e-2, "case " + i + ": relative L2 " + relL2);
      }
      try (LlmEngine plain = new LlmEngine(fp16, new SchedulerConfig(8, 256, 0, true))) {
        plainResults = greedyAll(plain, cases);
      }
    }
    try (GpuLlamaRunner target = GpuLlamaRunner.open(model, base.withSpeculativeTokens(4));
        GpuLlamaRunner draft =
            GpuLlamaRunner.open(model, base.withSpeculativeTokens(1).withInt8LmHead(true));
        LlmEngine engine =
            new LlmEngine(
                target, new SchedulerConfig(8, 256, 0, true), SpeculativeConfig.draft(4), draft)) {
      List<GenerationResult> results = greedyAll(engine, cases);
      for (int i = 0; i < cases.size(); i++) {
        assertArrayEquals(
            plainResults.get(i).newTokenIds(), results.get(i).newTokenIds(), "case " + i);
      }
      assertTrue(engine.stats().speculativeProposed() > 0, "nothing was proposed");
      assertTrue(
          engine.stats().acceptanceRate() >= 0.8, "acceptance " + engine.stats().acceptanceRate());
    }
  }

  @Test
  void theInt8HeadNeedsFp16Storage() {
    assertThrows(
        InvalidInputException.class,
        () -> GpuRunnerOptions.defaults().withStorage(StorageType.F32).withInt8LmHead(true));
  }

  /** The logits of the one-row decode step after the prompt (fed its first reference token). */
  private static float[] decodeStepLogits(GpuLlamaRunner runner, PublicLlama.Case c) {
    int[] prompt = c.prompt();
    int[] table = new int[(prompt.length + 1 + 15) / 16];
    Arrays.setAll(table, b -> 1 + b);
    runner.forward(List.of(new SequenceChunk(3, prompt, 0, table, false)));
    int first = c.greedyNewTokens()[0];
    return runner
        .forward(List.of(new SequenceChunk(3, new int[] {first}, prompt.length, table, true)))[0];
  }

  private static List<GenerationResult> greedyAll(LlmEngine engine, List<PublicLlama.Case> cases)
      throws Exception {
    return GpuTests.greedyAll(
        engine, cases.stream().map(PublicLlama.Case::prompt).toList(), NEW_TOKENS);
  }
}
