package io.kiln.execution.llm.gpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.kiln.InvalidInputException;
import io.kiln.cuda.Cuda;
import io.kiln.cuda.RequiresGpu;
import io.kiln.execution.llm.EngineStats;
import io.kiln.execution.llm.GenerationResult;
import io.kiln.execution.llm.LlmEngine;
import io.kiln.execution.llm.SchedulerConfig;
import io.kiln.execution.llm.SequenceChunk;
import io.kiln.model.llama.PublicLlama;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/** The CUDA runner on the public tiny Llama against the Hugging Face references. */
@Tag("gpu")
@RequiresGpu
@Timeout(300)
class GpuLlamaRunnerTest {
  private static final int NEW_TOKENS = 48;
  private static Path model;
  private static List<PublicLlama.Case> cases;
  private static double[][] margins;

  @BeforeAll
  static void load() throws Exception {
    GpuTests.assumeGpu();
    model = PublicLlama.directory();
    cases = PublicLlama.cases();
    JsonNode m = new ObjectMapper().readTree(model.resolve("margins.json").toFile());
    margins = new double[m.size()][];
    for (int i = 0; i < m.size(); i++) {
      margins[i] = new double[m.get(i).size()];
      for (int j = 0; j < margins[i].length; j++) {
        margins[i][j] = m.get(i).get(j).asDouble();
      }
    }
  }

  private static GpuRunnerOptions options(StorageType st, int kvBlocks) {
    return GpuRunnerOptions.defaults()
        .withStorage(st)
        .withKvBlocks(kvBlocks)
        .withMaxNumSeqs(32)
        .withMaxBatchedTokens(256);
  }

  private static int argmax(float[] logits) {
    int best = 0;
    for (int i = 1; i < logits.length; i++) {
      if (logits[i] > logits[best]) {
        best = i;
      }
    }
    return best;
  }

  private static int[] table(int first, int positions, int blockSize) {
    int[] t = new int[(positions + blockSize - 1) / blockSize];
    for (int i = 0; i < t.length; i++) {
      t[i] = first + i;
    }
    return t;
  }

  /** Prompt logits and greedy tokens of one sequence, the prompt in chunks of {@code chunk}. */
  private static Object[] greedy(GpuLlamaRunner runner, int[] prompt, int chunk) {
    int[] table = table(1, prompt.length + NEW_TOKENS, 16);
    float[] logits = null;
    for (int start = 0; start < prompt.length; start += chunk) {
      int end = Math.min(prompt.length, start + chunk);
      logits =
          runner
              .forward(
                  List.of(
                      new SequenceChunk(
                          9,
                          Arrays.copyOfRange(prompt, start, end),
                          start,
                          table,
                          end == prompt.length)))[0];
    }
    float[] promptLogits = logits;
    int[] tokens = new int[NEW_TOKENS];
    for (int i = 0; i < NEW_TOKENS; i++) {
      tokens[i] = argmax(logits);
      if (i + 1 < NEW_TOKENS) {
        logits =
            runner
                .forward(
                    List.of(
                        new SequenceChunk(
                            9, new int[] {tokens[i]}, prompt.length + i, table, true)))[0];
      }
    }
    return new Object[] {promptLogits, tokens};
  }

  /**
   * The runner's launch paths. With the skinny GEMM, one-row steps use it (with RoPE, the K/V write
   * and the SiLU gate fused); programmatic launch lets each kernel overlap the previous one; fused
   * norms fold the norm weights into the products (and run the norms inside the skinny ones).
   */
  enum LaunchPath {
    CUBLAS(false, false, false),
    SKINNY(true, false, false),
    CUBLAS_PROGRAMMATIC(false, true, false),
    SKINNY_PROGRAMMATIC(true, true, false),
    CUBLAS_FUSED(false, true, true),
    SKINNY_FUSED(true, true, true);

    final boolean skinny;
    final boolean programmatic;
    final boolean fused;

    LaunchPath(boolean skinny, boolean programmatic, boolean fused) {
      this.skinny = skinny;
      this.programmatic = programmatic;
      this.fused = fused;
    }

    GpuRunnerOptions apply(GpuRunnerOptions o) {
      return o.withSkinnyGemm(skinny).withProgrammaticLaunch(programmatic).withFusedNorms(fused);
    }
  }

  @ParameterizedTest
  @EnumSource(LaunchPath.class)
  void fp32GreedyTokensEqualTheReferenceExactly(LaunchPath path) {
    GpuRunnerOptions o = path.apply(options(StorageType.F32, 64));
    try (GpuLlamaRunner runner = GpuLlamaRunner.open(model, o)) {
      assertEquals(path.skinny ? "skinny" : "cublas", runner.gemmPath(1));
      assertEquals("cublas", runner.gemmPath(2));
      for (int i = 0; i < cases.size(); i++) {
        PublicLlama.Case c = cases.get(i);
        Object[] r = greedy(runner, c.prompt(), 1000);
        assertArrayEquals(c.greedyNewTokens(), (int[]) r[1], "case " + i);
        float[] logits = (float[]) r[0];
        float maxErr = 0;
        for (int j = 0; j < logits.length; j++) {
          maxErr = Math.max(maxErr, Math.abs(logits[j] - c.lastLogits()[j]));
        }
        assertTrue(maxErr <= 1e-3, "case " + i + ": last_logits max abs error " + maxErr);
        // Chunked prefill reads the earlier chunks' K/V from the pool: same result.
        Object[] chunked = greedy(runner, c.prompt(), 7);
        assertArrayEquals(c.greedyNewTokens(), (int[]) chunked[1], "chunked, case " + i);
      }
    }
  }

  @ParameterizedTest
  @EnumSource(LaunchPath.class)
  void fp16LogitsWithinOnePercentAndTokensEqualUpToTheFirstNearTie(LaunchPath path) {
    GpuRunnerOptions o = path.apply(options(StorageType.F16, 64));
    try (GpuLlamaRunner runner = GpuLlamaRunner.open(model, o)) {
      for (int i = 0; i < cases.size(); i++) {
        PublicLlama.Case c = cases.get(i);
        Object[] r = greedy(runner, c.prompt(), 1000);
        float[] logits = (float[]) r[0];
        double num = 0;
        double den = 0;
        for (int j = 0; j < logits.length; j++) {
          double d = logits[j] - c.lastLogits()[j];
          num += d * d;
          den += (double) c.lastLogits()[j] * c.lastLogits()[j];
        }
        double relL2 = Math.sqrt(num / den);
        assertTrue(relL2 <= 1e-2, "case " + i + ": relative L2 " + relL2);
        int[] tokens = (int[]) r[1];
        for (int step = 0; step < NEW_TOKENS; step++) {
          if (margins[i][step] < 0.05) {
            break;
          }
          assertEquals(c.greedyNewTokens()[step], tokens[step], "case " + i + ", step " + step);
        }
      }
    }
  }

  /**
   * forwardGreedy (whose one-row steps take the token from the skinny LM head's keys) against the
   * first largest of the logits that forward returns for the same steps.
   */
  @ParameterizedTest
  @EnumSource(LaunchPath.class)
  void forwardGreedyPicksTheFirstLargestLogit(LaunchPath path) {
    GpuRunnerOptions o = path.apply(options(StorageType.F16, 64));
    try (GpuLlamaRunner runner = GpuLlamaRunner.open(model, o)) {
      for (int i = 0; i < cases.size(); i++) {
        int[] prompt = cases.get(i).prompt();
        int[] expected = (int[]) greedy(runner, prompt, 1000)[1];
        int[] table = table(1, prompt.length + NEW_TOKENS, 16);
        int token =
            runner.forwardGreedy(List.of(new SequenceChunk(9, prompt, 0, table, true)))[0][0];
        for (int step = 0; step < NEW_TOKENS; step++) {
          assertEquals(expected[step], token, "case " + i + ", step " + step);
          token =
              runner
                  .forwardGreedy(
                      List.of(
                          new SequenceChunk(
                              9, new int[] {token}, prompt.length + step, table, true)))[0][0];
        }
      }
    }
  }

  @ParameterizedTest
  @EnumSource(LaunchPath.class)
  void graphReplayAndEagerDecodeGiveIdenticalLogits(LaunchPath path) {
    GpuRunnerOptions o = path.apply(options(StorageType.F16, 64));
    try (GpuLlamaRunner runner = GpuLlamaRunner.open(model, o)) {
      assertEquals(
          runner.decodeBuckets().length,
          runner.startupReport().graphs(),
          "every decode bucket captured: " + runner.startupReport().line());
      int n = cases.size();
      int[][] tables = new int[n][];
      int[] next = new int[n];
      int[] position = new int[n];
      for (int i = 0; i < n; i++) {
        int[] prompt = cases.get(i).prompt();
        tables[i] = table(1 + i * 12, prompt.length + NEW_TOKENS, 16);
        next[i] =
            argmax(runner.forward(List.of(new SequenceChunk(i, prompt, 0, tables[i], true)))[0]);
        position[i] = prompt.length;
      }
      for (int step = 0; step < 24; step++) {
        List<SequenceChunk> batch = new ArrayList<>();
        for (int i = 0; i < n; i++) {
          batch.add(new SequenceChunk(i, new int[] {next[i]}, position[i], tables[i], true));
        }
        float[][] replayed = runner.forward(batch);
        // Same inputs again, eagerly: rewrites the same K/V values, must give the same bits.
        float[][] eager = runner.forwardEager(batch);
        for (int i = 0; i < n; i++) {
          assertArrayEquals(replayed[i], eager[i], 0f, "step " + step + ", sequence " + i);
          next[i] = argmax(replayed[i]);
          position[i]++;
        }
      }
    }
  }

  private static List<int[]> thirtyTwoPrompts() {
    List<int[]> prompts = new ArrayList<>();
    for (int r = 0; r < 32; r++) {
      prompts.add(cases.get(r % cases.size()).prompt());
    }
    return prompts;
  }

  @Test
  void thirtyTwoConcurrentRequestsUnderATinyPoolFinishWithPreemptionsAndTheSameTokens()
      throws Exception {
    List<int[]> prompts = thirtyTwoPrompts();
    List<GenerationResult> free;
    try (GpuLlamaRunner runner = GpuLlamaRunner.open(model, options(StorageType.F32, 1 + 32 * 10));
        LlmEngine engine = new LlmEngine(runner, new SchedulerConfig(32, 256, 0, true))) {
      free = GpuTests.greedyAll(engine, prompts, NEW_TOKENS);
      assertEquals(0, engine.stats().preemptions());
    }
    try (GpuLlamaRunner runner = GpuLlamaRunner.open(model, options(StorageType.F32, 1 + 24));
        LlmEngine engine = new LlmEngine(runner, new SchedulerConfig(32, 256, 0, true))) {
      List<GenerationResult> tight = GpuTests.greedyAll(engine, prompts, NEW_TOKENS);
      EngineStats stats = engine.stats();
      assertTrue(stats.preemptions() > 0, "expected preemptions with 24 blocks");
      for (int r = 0; r < prompts.size(); r++) {
        assertArrayEquals(free.get(r).newTokenIds(), tight.get(r).newTokenIds(), "request " + r);
        assertArrayEquals(
            cases.get(r % cases.size()).greedyNewTokens(),
            tight.get(r).newTokenIds(),
            "request " + r);
      }
      assertEquals(0, stats.kvBlocksUsed());
    }
  }

  @Test
  void closingReturnsDeviceMemoryToTheBaselineAndTheStartupReportAddsUp() {
    // A first open (and step) loads cuBLAS and its kernels once; the baseline is taken after it.
    try (GpuLlamaRunner warm = GpuLlamaRunner.open(model, options(StorageType.F16, 16))) {
      warm.forward(List.of(new SequenceChunk(1, cases.get(0).prompt(), 0, table(1, 20, 16), true)));
    }
    long baseline = Cuda.memInfo()[0];
    for (int round = 0; round < 2; round++) {
      GpuRunnerOptions auto = options(StorageType.F16, 0).withKvUtilization(0.05);
      try (GpuLlamaRunner runner = GpuLlamaRunner.open(model, auto)) {
        GpuStartupReport r = runner.startupReport();
        assertTrue(r.kvBlocks() > 1000, r.line());
        assertEquals(r.kvBlocks(), runner.kvPool().numBlocks());
        assertTrue(r.graphs() == runner.decodeBuckets().length && r.graphs() > 0, r.line());
        long used = baseline - Cuda.memInfo()[0];
        assertTrue(used >= r.kvBytes() + r.weightBytes(), "used " + used + ", " + r.line());
        int[] table = table(1, 20, 16);
        assertEquals(
            cases.get(0).greedyNewTokens()[0],
            argmax(
                runner
                    .forward(List.of(new SequenceChunk(1, cases.get(0).prompt(), 0, table, true)))[
                    0]));
      }
      long after = Cuda.memInfo()[0];
      assertTrue(
          Math.abs(after - baseline) <= (8L << 20),
          "free device memory " + after + " after close, " + baseline + " before open");
    }
  }

  /**
   * Verification steps (K + 1 positions per sequence, replayed from graphs per batch bucket, and
   * eagerly) score each position as decoding would: row j's argmax is the reference token after the
   * first j + 1 verified ones. Two sequences, one verifying fewer tokens (padded rows).
   */
  @ParameterizedTest
  @EnumSource(StorageType.class)
  void verificationStepsScoreEveryPositionAsDecodingWould(StorageType st) {
    int k = 4;
    try (GpuLlamaRunner runner =
        GpuLlamaRunner.open(model, options(st, 64).withSpeculativeTokens(k))) {
      for (boolean graph : new boolean[] {true, false}) {
        List<SequenceChunk> batch = new ArrayList<>();
        int[] verified = {k + 1, 3};
        for (int s = 0; s < 2; s++) {
          PublicLlama.Case c = cases.get(s);
          int[] table = table(1 + 16 * s, c.prompt().length + NEW_TOKENS, 16);
          runner.forward(List.of(new SequenceChunk(s, c.prompt(), 0, table, false)));
          int[] tokens = Arrays.copyOf(c.greedyNewTokens(), verified[s]);
          batch.add(new SequenceChunk(s, tokens, c.prompt().length, table, tokens.length));
        }
        float[][] logits = graph ? runner.forward(batch) : runner.forwardEager(batch);
        int[][] greedy = runner.forwardGreedy(batch);
        int vocab = runner.spec().vocabSize();
        for (int s = 0; s < 2; s++) {
          int[] expected = cases.get(s).greedyNewTokens();
          assertEquals(verified[s] * vocab, logits[s].length);
          for (int j = 0; j < verified[s]; j++) {
            float[] row = Arrays.copyOfRange(logits[s], j * vocab, (j + 1) * vocab);
            String what = st + (graph ? " graph" : " eager") + ", sequence " + s + ", row " + j;
            assertEquals(expected[j + 1], argmax(row), what);
            assertEquals(expected[j + 1], greedy[s][j], what + " (greedy path)");
          }
        }
      }
    }
  }

  /**
   * A draft's first round (two known positions, the logits of the last only) replays the graph of a
   * runner opened for a draft, and scores as the same step run eagerly and as the reference.
   */
  @ParameterizedTest
  @EnumSource(StorageType.class)
  void draftFirstRoundsReplayAGraphAndScoreAsEagerSteps(StorageType st) {
    try (GpuLlamaRunner runner =
        GpuLlamaRunner.open(model, options(st, 64).withSpeculativeTokens(1))) {
      PublicLlama.Case c = cases.get(1);
      int[] prompt = c.prompt();
      int known = prompt.length - 2;
      int[] table = table(1, prompt.length + NEW_TOKENS, 16);
      runner.forward(List.of(new SequenceChunk(0, Arrays.copyOf(prompt, known), 0, table, false)));
      SequenceChunk round =
          new SequenceChunk(0, Arrays.copyOfRange(prompt, known, prompt.length), known, table, 1);
      long before = runner.graphReplays();
      float[] graphed = runner.forward(List.of(round))[0];
      int greedy = runner.forwardGreedy(List.of(round))[0][0];
      assertEquals(before + 2, runner.graphReplays(), "both rounds replay the graph");
      float[] eager = runner.forwardEager(List.of(round))[0];
      int expected = c.greedyNewTokens()[0];
      assertEquals(runner.spec().vocabSize(), graphed.length, "one logits row");
      assertEquals(expected, argmax(graphed), st + " graph");
      assertEquals(expected, greedy, st + " graph, greedy path");
      assertEquals(expected, argmax(eager), st + " eager");
      double worst = 0;
      for (int i = 0; i < eager.length; i++) {
        worst = Math.max(worst, Math.abs(graphed[i] - eager[i]) / (1 + Math.abs(eager[i])));
      }
      assertTrue(worst < 1e-3, st + ": graph against eager " + worst);
    }
  }

  @Test
  void badStepsAreTypedErrors() {
    try (GpuLlamaRunner runner = GpuLlamaRunner.open(model, options(StorageType.F32, 16))) {
      int[] table = table(1, 16, 16);
      assertThrows(
          InvalidInputException.class,
          () -> runner.forward(List.of(new SequenceChunk(1, new int[] {512}, 0, table, true))));
      assertThrows(
          InvalidInputException.class,
          () ->
              runner.forward(
                  List.of(new SequenceChunk(1, new int[300], 0, table(1, 300, 16), true))));
      assertThrows(
          InvalidInputException.class,
          () ->
              runner.forward(List.of(new SequenceChunk(1, new int[] {1}, 0, new int[] {0}, true))));
    }
  }
}
