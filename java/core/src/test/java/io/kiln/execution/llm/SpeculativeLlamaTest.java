package io.kiln.execution.llm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.kiln.model.llama.PublicLlama;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** Speculative decoding on the real CPU Llama runner, against Hugging Face's greedy tokens. */
@Timeout(180)
class SpeculativeLlamaTest {
  private static final int NEW_TOKENS = 48;
  private static List<PublicLlama.Case> cases;

  @BeforeAll
  static void load() {
    cases = PublicLlama.cases();
  }

  private static void assertReference(List<GenerationResult> results) {
    for (int i = 0; i < cases.size(); i++) {
      assertArrayEquals(cases.get(i).greedyNewTokens(), results.get(i).newTokenIds(), "case " + i);
    }
  }

  @Test
  void theModelAsItsOwnDraftGivesTheReferenceTokensAndAcceptsNearlyAll() throws Exception {
    try (CpuLlamaRunner target = PublicLlamaEngines.runner(4 * 12);
        CpuLlamaRunner draft = PublicLlamaEngines.runner(4 * 12);
        LlmEngine engine =
            new LlmEngine(
                target, new SchedulerConfig(8, 64, 0, true), SpeculativeConfig.draft(4), draft)) {
      List<GenerationResult> results = PublicLlamaEngines.greedyTogether(engine, cases, NEW_TOKENS);
      assertReference(results);
      EngineStats stats = engine.stats();
      assertTrue(stats.speculativeProposed() > 0, "nothing was proposed");
      assertTrue(stats.acceptanceRate() >= 0.9, "acceptance " + stats.acceptanceRate());
      // Fewer target steps than tokens: each verification yields more than one token.
      assertTrue(stats.meanAcceptedLength() > 3, "mean accepted " + stats.meanAcceptedLength());
      for (GenerationResult r : results) {
        assertTrue(r.metrics().speculativeProposed() > 0);
      }
      assertEquals(0, stats.kvBlocksUsed(), "target blocks held after the run");
    }
  }

  @Test
  void greedyDraftsTakeTheTokenPathSoNoLogitsLeaveTheDraft() throws Exception {
    try (CpuLlamaRunner target = PublicLlamaEngines.runner(4 * 12);
        CountingRunner draft = new CountingRunner(PublicLlamaEngines.runner(4 * 12));
        LlmEngine engine =
            new LlmEngine(
                target, new SchedulerConfig(8, 64, 0, true), SpeculativeConfig.draft(4), draft)) {
      assertReference(PublicLlamaEngines.greedyTogether(engine, cases, NEW_TOKENS));
      assertTrue(engine.stats().acceptanceRate() >= 0.9, "acceptance");
      assertTrue(draft.greedySteps > 0, "the draft never took its token path");
      assertEquals(0, draft.logitRows, "logit rows left the draft for greedy requests");
      // The accepted tokens the draft still lacks ride with its next first round, so the only
      // steps without logits are the prompts' catch-ups, not one per verification.
      assertTrue(
          draft.logitSteps <= cases.size(),
          draft.logitSteps + " catch-up steps for " + cases.size() + " prompts");
      // A sampled request needs the draft's distribution, so its rows do travel.
      engine.generate(
          cases.get(0).prompt(),
          SamplingParams.builder().temperature(0.8).seed(3).maxNewTokens(8).build());
      assertTrue(draft.logitRows > 0, "a sampled request drew no draft logits");
    }
  }

  @Test
  void aDraftWhoseLogitsGoNonFiniteProposesLessButTheOutputStaysExact() throws Exception {
    try (CpuLlamaRunner target = PublicLlamaEngines.runner(4 * 12);
        CountingRunner draft = new CountingRunner(PublicLlamaEngines.runner(4 * 12), 3);
        LlmEngine engine =
            new LlmEngine(
                target, new SchedulerConfig(8, 64, 0, true), SpeculativeConfig.draft(4), draft)) {
      assertReference(PublicLlamaEngines.greedyTogether(engine, cases, NEW_TOKENS));
      EngineStats stats = engine.stats();
      assertTrue(stats.speculativeProposed() > 0, "nothing was proposed");
      // Every third draft step is poisoned, so proposals stop short of K = 4.
      assertTrue(
          stats.speculativeProposed() < 4 * stats.speculativeSteps(),
          stats.speculativeProposed() + " proposed in " + stats.speculativeSteps() + " steps");
      assertEquals(0, stats.kvBlocksUsed(), "target blocks held after the run");
    }
  }

  @Test
  void ngramLookupGivesTheReferenceTokens() throws Exception {
    try (CpuLlamaRunner target = PublicLlamaEngines.runner(4 * 12);
        LlmEngine engine =
            new LlmEngine(
                target, new SchedulerConfig(8, 64, 0, true), SpeculativeConfig.ngram(4), null)) {
      assertReference(PublicLlamaEngines.greedyTogether(engine, cases, NEW_TOKENS));
      assertTrue(engine.stats().speculativeProposed() > 0, "nothing was proposed");
      assertEquals(0, engine.stats().kvBlocksUsed());
    }
  }

  @Test
  void ngramLookupAcceptsMostOfARepetitivePrompt() throws Exception {
    // A passage repeated: the model, like any copying model, tends to continue the repetition.
    int[] passage = cases.get(0).prompt();
    int[] prompt = new int[passage.length * 4];
    for (int i = 0; i < prompt.length; i++) {
      prompt[i] = passage[i % passage.length];
    }
    try (CpuLlamaRunner target = PublicLlamaEngines.runner(4 * 12);
        LlmEngine engine =
            new LlmEngine(
                target, new SchedulerConfig(8, 64, 0, true), SpeculativeConfig.ngram(4), null);
        CpuLlamaRunner plainRunner = PublicLlamaEngines.runner(4 * 12);
        LlmEngine plain = new LlmEngine(plainRunner, new SchedulerConfig(8, 64, 0, true))) {
      GenerationResult fast = engine.generate(prompt, SamplingParams.greedy(NEW_TOKENS));
      GenerationResult slow = plain.generate(prompt, SamplingParams.greedy(NEW_TOKENS));
      assertArrayEquals(slow.newTokenIds(), fast.newTokenIds());
      double rate = fast.metrics().acceptanceRate();
      assertTrue(rate > 0.5, "acceptance " + rate);
    }
  }
}
