package io.kiln.execution.llm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.kiln.InvalidInputException;
import io.kiln.model.llama.LlamaOnnxExporter;
import io.kiln.model.llama.PublicLlama;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** The scheduler and engine on the real CPU Llama runner, against Hugging Face's greedy tokens. */
@Timeout(120)
class LlmEngineLlamaTest {
  private static final int NEW_TOKENS = 48;
  private static List<PublicLlama.Case> cases;

  @BeforeAll
  static void load() {
    cases = PublicLlama.cases();
  }

  @Test
  void fourPromptsAloneAndTogetherGiveTheReferenceTokens() throws Exception {
    try (CpuLlamaRunner runner = PublicLlamaEngines.runner(4 * 12);
        LlmEngine engine = new LlmEngine(runner, new SchedulerConfig(8, 64, 0, false))) {
      for (int i = 0; i < cases.size(); i++) {
        GenerationResult alone =
            engine.generate(cases.get(i).prompt(), SamplingParams.greedy(NEW_TOKENS));
        assertArrayEquals(cases.get(i).greedyNewTokens(), alone.newTokenIds(), "alone, case " + i);
      }
      List<GenerationResult> together =
          PublicLlamaEngines.greedyTogether(engine, cases, NEW_TOKENS);
      for (int i = 0; i < cases.size(); i++) {
        assertArrayEquals(
            cases.get(i).greedyNewTokens(), together.get(i).newTokenIds(), "together, case " + i);
        assertEquals(FinishReason.LENGTH, together.get(i).finishReason());
        assertEquals(0, together.get(i).metrics().preemptions());
      }
      assertEquals(0, engine.stats().preemptions());
    }
  }

  @Test
  void tooSmallABlockBudgetPreemptsAndStillGivesTheReferenceTokens() throws Exception {
    // All four at once need 4 + 4 + 6 + 10 = 24 blocks of 16; the budget is 12 (plus null).
    try (CpuLlamaRunner runner = PublicLlamaEngines.runner(4 * 12);
        LlmEngine engine = new LlmEngine(runner, new SchedulerConfig(8, 64, 13, true))) {
      List<GenerationResult> results = PublicLlamaEngines.greedyTogether(engine, cases, NEW_TOKENS);
      int preemptions = 0;
      for (int i = 0; i < cases.size(); i++) {
        assertArrayEquals(
            cases.get(i).greedyNewTokens(), results.get(i).newTokenIds(), "case " + i);
        preemptions += results.get(i).metrics().preemptions();
      }
      assertTrue(preemptions > 0, "expected preemptions with 12 blocks");
      EngineStats stats = engine.stats();
      assertEquals(preemptions, stats.preemptions());
      assertTrue(stats.peakKvBlocksUsed() <= 12);
      assertEquals(0, stats.kvBlocksUsed());
    }
  }

  @Test
  void prefixCacheHitReusesThePromptAndGivesTheSameTokens() {
    try (CpuLlamaRunner runner = PublicLlamaEngines.runner(2 * 12);
        LlmEngine engine = new LlmEngine(runner, SchedulerConfig.defaults())) {
      PublicLlama.Case c = cases.get(3); // 100 tokens
      GenerationResult first = engine.generate(c.prompt(), SamplingParams.greedy(NEW_TOKENS));
      GenerationResult second = engine.generate(c.prompt(), SamplingParams.greedy(NEW_TOKENS));
      assertEquals(0, first.metrics().cachedPromptTokens());
      assertEquals(96, second.metrics().cachedPromptTokens());
      assertArrayEquals(c.greedyNewTokens(), first.newTokenIds());
      assertArrayEquals(c.greedyNewTokens(), second.newTokenIds());
    }
  }

  @Test
  void cancellingOneRequestLeavesTheOthersExact() throws Exception {
    try (CpuLlamaRunner runner = PublicLlamaEngines.runner(4 * 12);
        LlmEngine engine = new LlmEngine(runner, new SchedulerConfig(8, 32, 0, true))) {
      CountDownLatch started = new CountDownLatch(3);
      List<GenerationHandle> handles = new ArrayList<>();
      for (PublicLlama.Case c : cases) {
        handles.add(
            engine.submit(c.prompt(), SamplingParams.greedy(NEW_TOKENS), e -> started.countDown()));
      }
      started.await(30, TimeUnit.SECONDS);
      handles.get(1).cancel();
      assertThrows(
          GenerationCancelledException.class,
          () -> handles.get(1).result().get(60, TimeUnit.SECONDS));
      for (int i : new int[] {0, 2, 3}) {
        assertArrayEquals(
            cases.get(i).greedyNewTokens(),
            handles.get(i).result().get(60, TimeUnit.SECONDS).newTokenIds(),
            "case " + i);
      }
    }
  }

  @Test
  void promptLongerThanTheContextIsRefused() {
    try (CpuLlamaRunner runner = PublicLlamaEngines.runner(200);
        LlmEngine engine = new LlmEngine(runner, SchedulerConfig.defaults())) {
      int context = runner.spec().maxPositions();
      InvalidInputException e =
          assertThrows(
              InvalidInputException.class,
              () -> engine.generate(new int[context + 1], SamplingParams.greedy(1)));
      assertTrue(e.getMessage().contains("context"), e.getMessage());
      assertThrows(
          InvalidInputException.class,
          () ->
              engine.generate(
                  cases.get(0).prompt(),
                  SamplingParams.builder().temperature(0.5).topP(2).build()));
    }
  }

  @Test
  void theOnnxRunnerServesTheSameTokensUnderPreemption(@TempDir Path dir) throws Exception {
    Path onnx = LlamaOnnxExporter.export(PublicLlama.directory(), dir.resolve("onnx"), false);
    try (OnnxDecoderRunner runner =
            OnnxDecoderRunner.open(
                onnx.getParent(), KvPoolSpec.ofUsableBlocks(4 * 12, PublicLlamaEngines.BLOCK), 2);
        LlmEngine engine = new LlmEngine(runner, new SchedulerConfig(8, 64, 13, true))) {
      List<GenerationResult> results = PublicLlamaEngines.greedyTogether(engine, cases, NEW_TOKENS);
      for (int i = 0; i < cases.size(); i++) {
        assertArrayEquals(
            cases.get(i).greedyNewTokens(), results.get(i).newTokenIds(), "case " + i);
      }
      assertTrue(engine.stats().preemptions() > 0);
    }
  }
}
