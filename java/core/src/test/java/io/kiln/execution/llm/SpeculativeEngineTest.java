package io.kiln.execution.llm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.kiln.InvalidInputException;
import io.kiln.ModelException;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Speculation under continuous batching on the toy model, whose tokens depend on every earlier
 * position read back through the paged pool: a rejected position left behind, a block freed too
 * early or a prefix cached with unverified tokens changes the output.
 */
@Timeout(120)
class SpeculativeEngineTest {
  private static final int VOCAB = 61;
  private static final int BLOCK = 4;

  private static int[] prompt(SplittableRandom rnd, int length) {
    int[] p = new int[length];
    for (int i = 0; i < length; i++) {
      p[i] = rnd.nextInt(VOCAB);
    }
    return p;
  }

  private static void awaitIdle(LlmEngine engine) throws InterruptedException {
    for (int i = 0; i < 500; i++) {
      EngineStats s = engine.stats();
      if (s.running() == 0 && s.waiting() == 0) {
        return;
      }
      Thread.sleep(10);
    }
    throw new AssertionError("engine did not go idle: " + engine.stats());
  }

  /**
   * Speculating and plain, greedy and sampled requests share a small pool (preemptions), a small
   * step budget (chunked prefill) and common prefixes (prefix cache), and some are cancelled. The
   * greedy ones give the reference tokens and every block of both pools comes back.
   */
  @ParameterizedTest
  @ValueSource(strings = {"ngram", "same-draft", "other-draft"})
  void mixedWorkloadsGiveThePlainTokensAndReturnEveryBlock(String method) throws Exception {
    ToyModelRunner target = new ToyModelRunner(VOCAB, 256, 24, BLOCK, -1);
    ToyModelRunner draft =
        method.equals("ngram")
            ? null
            : new ToyModelRunner(VOCAB, 256, 40, BLOCK, -1, method.equals("same-draft") ? 0 : 5);
    SpeculativeConfig speculative =
        draft == null ? SpeculativeConfig.ngram(3).withNgram(1, 3) : SpeculativeConfig.draft(3);
    SplittableRandom rnd = new SplittableRandom(method.hashCode());
    int[] shared = prompt(rnd, 9);
    try (LlmEngine engine =
        new LlmEngine(target, new SchedulerConfig(6, 12, 0, true), speculative, draft)) {
      List<int[]> prompts = new ArrayList<>();
      List<SamplingParams> params = new ArrayList<>();
      List<GenerationHandle> handles = new ArrayList<>();
      for (int i = 0; i < 40; i++) {
        int[] p = prompt(rnd, 1 + rnd.nextInt(14));
        if (i % 3 == 0) {
          // A repeated passage, so that n-gram lookup has something to find.
          int[] repeated = new int[shared.length * 2 + p.length];
          for (int j = 0; j < repeated.length; j++) {
            repeated[j] = j < 2 * shared.length ? shared[j % shared.length] : p[j - 18];
          }
          p = repeated;
        }
        SamplingParams sp =
            i % 5 == 4
                ? SamplingParams.builder().temperature(0.9).seed(i).maxNewTokens(20).build()
                : SamplingParams.builder()
                    .temperature(0)
                    .maxNewTokens(8 + rnd.nextInt(20))
                    .speculate(i % 4 != 1)
                    .build();
        prompts.add(p);
        params.add(sp);
        handles.add(engine.submit(p, sp, e -> {}));
      }
      for (int i = 0; i < handles.size(); i += 7) {
        handles.get(i).cancel();
      }
      for (int i = 0; i < handles.size(); i++) {
        GenerationResult result;
        try {
          result = handles.get(i).result().get(60, TimeUnit.SECONDS);
        } catch (GenerationCancelledException e) {
          assertEquals(0, i % 7, "request " + i + " was not cancelled: " + e);
          continue;
        }
        SamplingParams sp = params.get(i);
        assertEquals(sp.maxNewTokens(), result.newTokenIds().length, "request " + i);
        if (sp.isGreedy()) {
          assertArrayEquals(
              ToyModelRunner.reference(prompts.get(i), sp.maxNewTokens(), VOCAB, -1),
              result.newTokenIds(),
              "request " + i);
        }
      }
      awaitIdle(engine);
      EngineStats stats = engine.stats();
      assertEquals(0, stats.kvBlocksUsed(), "target blocks held");
      assertEquals(0, stats.draftKvBlocksUsed(), "draft blocks held");
      assertTrue(stats.preemptions() > 0, "the workload should preempt: " + stats);
      assertTrue(stats.speculativeProposed() > 0, "nothing proposed: " + stats);
      if (method.equals("same-draft")) {
        assertEquals(1.0, stats.acceptanceRate(), 1e-9, "a model drafting for itself");
      }
    }
  }

  @Test
  void speculationOffForARequestProposesNothing() {
    ToyModelRunner target = new ToyModelRunner(VOCAB, 256, 40, BLOCK, -1);
    try (LlmEngine engine =
        new LlmEngine(
            target, new SchedulerConfig(4, 64, 0, true), SpeculativeConfig.ngram(4), null)) {
      int[] p = {1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2};
      GenerationResult r =
          engine.generate(
              p, SamplingParams.builder().temperature(0).maxNewTokens(12).speculate(false).build());
      assertArrayEquals(ToyModelRunner.reference(p, 12, VOCAB, -1), r.newTokenIds());
      assertEquals(0, r.metrics().speculativeProposed());
      assertEquals(0, engine.stats().speculativeProposed());
    }
  }

  @Test
  void aDraftWithAnotherVocabularyIsAModelError() {
    ToyModelRunner target = new ToyModelRunner(VOCAB, 256, 40, BLOCK, -1);
    ToyModelRunner draft = new ToyModelRunner(VOCAB + 1, 256, 40, BLOCK, -1);
    ModelException e =
        assertThrows(
            ModelException.class,
            () ->
                new LlmEngine(
                    target, SchedulerConfig.defaults(), SpeculativeConfig.draft(4), draft));
    assertTrue(e.getMessage().contains("vocabulary"), e.getMessage());
  }

  @Test
  void outOfRangeSettingsAreInvalidInput() {
    assertThrows(InvalidInputException.class, () -> SpeculativeConfig.ngram(0));
    assertThrows(
        InvalidInputException.class,
        () -> SpeculativeConfig.ngram(SpeculativeConfig.MAX_TOKENS + 1));
    assertThrows(InvalidInputException.class, () -> SpeculativeConfig.ngram(2).withNgram(3, 2));
    assertThrows(InvalidInputException.class, () -> SpeculativeConfig.ngram(2).withNgram(0, 2));
    ToyModelRunner target = new ToyModelRunner(VOCAB, 256, 40, BLOCK, -1);
    Supplier<LlmEngine> noDraft =
        () -> new LlmEngine(target, SchedulerConfig.defaults(), SpeculativeConfig.draft(2), null);
    assertThrows(IllegalArgumentException.class, noDraft::get);
  }

  @Test
  void theSameSeedGivesTheSameSampledTokens() {
    ToyModelRunner target = new ToyModelRunner(VOCAB, 256, 40, BLOCK, -1);
    ToyModelRunner draft = new ToyModelRunner(VOCAB, 256, 40, BLOCK, -1, 5);
    try (LlmEngine engine =
        new LlmEngine(
            target, new SchedulerConfig(4, 64, 0, true), SpeculativeConfig.draft(3), draft)) {
      SamplingParams sp =
          SamplingParams.builder().temperature(0.8).topK(20).seed(42).maxNewTokens(24).build();
      int[] p = {4, 8, 15, 16, 23, 42};
      int[] first = engine.generate(p, sp).newTokenIds();
      int[] second = engine.generate(p, sp).newTokenIds();
      assertArrayEquals(first, second);
    }
  }

  /**
   * A prompt longer than the step budget goes through the draft chunk by chunk in the steps that
   * compute it for the target: by the time the target computes the prompt's last chunk, the draft
   * holds every prompt token but the last, and its first round feeds only that one and the token
   * the prompt step produced.
   */
  @Test
  void theDraftComputesAPromptInTheStepsThatComputeItForTheTarget() {
    List<String> calls = new ArrayList<>();
    ModelRunner target = logged("target", new ToyModelRunner(VOCAB, 256, 24, BLOCK, -1), calls);
    ModelRunner draft = logged("draft", new ToyModelRunner(VOCAB, 256, 24, BLOCK, -1, 5), calls);
    int[] p = prompt(new SplittableRandom(3), 30);
    try (LlmEngine engine =
        new LlmEngine(
            target, new SchedulerConfig(4, 12, 0, true), SpeculativeConfig.draft(3), draft)) {
      GenerationResult r =
          engine.generate(p, SamplingParams.builder().temperature(0).maxNewTokens(10).build());
      assertArrayEquals(ToyModelRunner.reference(p, 10, VOCAB, -1), r.newTokenIds());
    }
    // The prompt in chunks of 12: each step computes the draft's part first, then the target's.
    assertEquals(
        List.of(
            "draft 0+12/0",
            "target 0+12/0",
            "draft 12+12/0",
            "target 12+12/0",
            "draft 24+5/0",
            "target 24+6/1",
            "draft 29+2/1"),
        calls.subList(0, 7));
  }

  /** {@code runner}, writing "NAME start+tokens/logits" for each chunk it computes into calls. */
  private static ModelRunner logged(String name, ModelRunner runner, List<String> calls) {
    return new ModelRunner() {
      @Override
      public ModelSpec spec() {
        return runner.spec();
      }

      @Override
      public KvPoolSpec kvPool() {
        return runner.kvPool();
      }

      @Override
      public float[][] forward(List<SequenceChunk> batch) {
        for (SequenceChunk c : batch) {
          calls.add(name + " " + c.startPosition() + "+" + c.tokens().length + "/" + c.numLogits());
        }
        return runner.forward(batch);
      }

      @Override
      public void close() {
        runner.close();
      }
    };
  }
}
