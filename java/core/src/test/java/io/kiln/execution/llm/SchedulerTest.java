package io.kiln.execution.llm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.kiln.execution.kv.KvBlockManager;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class SchedulerTest {
  private static final int VOCAB = 61;
  private static final int BLOCK = 4;
  private static final TokenListener IGNORE = event -> {};

  /** Drives a scheduler and a toy runner step by step on this thread. */
  private static final class Harness {
    final ToyModelRunner runner;
    final Scheduler scheduler;
    final SchedulerConfig config;
    final Map<Long, LlmRequest> requests = new HashMap<>();
    final List<ScheduledStep> steps = new ArrayList<>();
    final List<List<TokenEvent>> events = new ArrayList<>();
    long nextId = 1;

    Harness(SchedulerConfig config, int poolBlocks) {
      this.config = config;
      this.runner = new ToyModelRunner(VOCAB, 512, poolBlocks, BLOCK, -1);
      this.scheduler =
          new Scheduler(
              config, new KvBlockManager(poolBlocks, BLOCK, config.prefixCaching()), null);
    }

    LlmRequest add(int[] prompt, SamplingParams params) {
      LlmRequest r = new LlmRequest(nextId++, prompt, params, -1, 512, IGNORE);
      requests.put(r.id, r);
      scheduler.add(r);
      return r;
    }

    boolean step() {
      if (!scheduler.hasWork()) {
        return false;
      }
      ScheduledStep step = scheduler.schedule();
      assertFalse(step.isEmpty(), "stalled");
      assertTrue(step.chunks.size() <= config.maxNumSeqs(), "too many sequences");
      assertTrue(step.numTokens <= config.maxNumBatchedTokens(), "too many tokens");
      Set<Long> ids = new HashSet<>();
      for (SequenceChunk c : step.chunks) {
        assertTrue(ids.add(c.requestId()), "request twice in a step");
      }
      steps.add(step);
      events.add(scheduler.complete(step, runner.forward(step.chunks), null, System.nanoTime()));
      return true;
    }

    void runAll() {
      int guard = 0;
      while (step()) {
        assertTrue(++guard < 100_000, "no progress");
      }
      assertEquals(
          scheduler.kv().numUsableBlocks(), scheduler.kv().numFreeBlocks(), "blocks leaked");
    }
  }

  private static int[] randomPrompt(SplittableRandom rnd, int length) {
    int[] p = new int[length];
    for (int i = 0; i < length; i++) {
      p[i] = rnd.nextInt(VOCAB);
    }
    return p;
  }

  /** Prompts of mixed lengths, some sharing long prefixes so the prefix cache gets hits. */
  private static List<int[]> prompts(long seed, int count) {
    SplittableRandom rnd = new SplittableRandom(seed);
    int[] shared = randomPrompt(rnd, 40);
    List<int[]> prompts = new ArrayList<>();
    for (int i = 0; i < count; i++) {
      int[] p = randomPrompt(rnd, 1 + rnd.nextInt(60));
      if (i % 3 == 0) {
        int keep = 8 + rnd.nextInt(32);
        System.arraycopy(shared, 0, p = Arrays.copyOf(p, Math.max(p.length, keep + 1)), 0, keep);
      }
      prompts.add(p);
    }
    return prompts;
  }

  private static void assertAllMatchReference(Harness h, Map<LlmRequest, int[]> prompts, int n) {
    for (Map.Entry<LlmRequest, int[]> e : prompts.entrySet()) {
      assertArrayEquals(
          ToyModelRunner.reference(e.getValue(), n, VOCAB, -1),
          e.getKey().generatedTokens(),
          "request " + e.getKey().id);
      assertEquals(FinishReason.LENGTH, e.getKey().finishReason);
    }
  }

  @Test
  void batchedRequestsProduceTheTokensEachProducesAlone() {
    Harness h = new Harness(new SchedulerConfig(5, 24, 0, true), 256);
    Map<LlmRequest, int[]> submitted = new HashMap<>();
    for (int[] p : prompts(1, 14)) {
      submitted.put(h.add(p, SamplingParams.greedy(20)), p);
    }
    h.runAll();
    assertAllMatchReference(h, submitted, 20);
    assertEquals(0, h.scheduler.preemptions());
    assertTrue(h.scheduler.prefixHitTokens() > 0, "shared prefixes should hit the cache");

    boolean mixed = false;
    boolean chunked = false;
    for (ScheduledStep step : h.steps) {
      boolean decode = false;
      boolean prefill = false;
      for (int i = 0; i < step.chunks.size(); i++) {
        SequenceChunk c = step.chunks.get(i);
        if (c.startPosition() >= step.requests.get(i).promptLength) {
          decode = true;
        } else {
          prefill = true;
        }
        chunked |= !c.wantLogits();
      }
      mixed |= decode && prefill;
    }
    assertTrue(mixed, "decodes and prefills should share steps");
    assertTrue(chunked, "long prompts should be split into chunks");
  }

  @Test
  void tooFewBlocksPreemptByRecomputeAndStillMatch() {
    // 14 usable blocks of 4 tokens: the requests below need far more at once.
    Harness h = new Harness(new SchedulerConfig(8, 64, 0, true), 15);
    Map<LlmRequest, int[]> submitted = new HashMap<>();
    for (int[] p : prompts(2, 10)) {
      int[] q = Arrays.copyOf(p, Math.min(p.length, 20));
      submitted.put(h.add(q, SamplingParams.greedy(24)), q);
    }
    h.runAll();
    assertAllMatchReference(h, submitted, 24);
    assertTrue(h.scheduler.preemptions() > 0, "expected preemptions");
    int perRequest = submitted.keySet().stream().mapToInt(r -> r.preemptions).sum();
    assertEquals(h.scheduler.preemptions(), perRequest);
    assertTrue(h.scheduler.peakUsedBlocks() <= 14);
  }

  @Test
  void preemptsTheNewestRunningRequest() {
    // 6 usable blocks; three 4-token prompts take one block each and then all grow.
    Harness h = new Harness(new SchedulerConfig(8, 64, 0, false), 7);
    SplittableRandom rnd = new SplittableRandom(3);
    LlmRequest a = h.add(randomPrompt(rnd, 4), SamplingParams.greedy(12));
    LlmRequest b = h.add(randomPrompt(rnd, 4), SamplingParams.greedy(12));
    LlmRequest c = h.add(randomPrompt(rnd, 4), SamplingParams.greedy(12));
    while (h.scheduler.preemptions() == 0) {
      assertTrue(h.step());
    }
    assertEquals(0, a.preemptions);
    assertEquals(0, b.preemptions);
    assertEquals(1, c.preemptions);
    assertEquals(0, c.numComputed);
    assertFalse(h.scheduler.kv().holds(c.id));
    h.runAll();
    assertArrayEquals(
        ToyModelRunner.reference(Arrays.copyOf(c.tokens, 4), 12, VOCAB, -1), c.generatedTokens());
    assertArrayEquals(
        ToyModelRunner.reference(Arrays.copyOf(a.tokens, 4), 12, VOCAB, -1), a.generatedTokens());
  }

  @Test
  void prefixCacheHitsSkipCachedFullBlocks() {
    for (int length : new int[] {40, 41}) {
      int[] prompt = randomPrompt(new SplittableRandom(length), length);
      for (boolean caching : new boolean[] {true, false}) {
        Harness h = new Harness(new SchedulerConfig(4, 256, 0, caching), 64);
        LlmRequest first = h.add(prompt, SamplingParams.greedy(5));
        h.runAll();
        int stepsBefore = h.steps.size();
        LlmRequest second = h.add(prompt.clone(), SamplingParams.greedy(5));
        h.runAll();
        SequenceChunk firstChunk = h.steps.get(stepsBefore).chunks.get(0);
        // Whole blocks only, and never the last prompt token: its logits are needed.
        int expectedCached = caching ? (length - 1) / BLOCK * BLOCK : 0;
        assertEquals(expectedCached, firstChunk.startPosition());
        assertEquals(length - expectedCached, firstChunk.tokens().length);
        assertEquals(expectedCached, second.cachedPromptTokens);
        assertArrayEquals(first.generatedTokens(), second.generatedTokens());
        assertArrayEquals(ToyModelRunner.reference(prompt, 5, VOCAB, -1), second.generatedTokens());
      }
    }
  }

  @Test
  void finishedRequestsLeaveAtOnceAndWaitingOnesJoinTheNextStep() {
    Harness h = new Harness(new SchedulerConfig(2, 64, 0, true), 64);
    SplittableRandom rnd = new SplittableRandom(5);
    LlmRequest a = h.add(randomPrompt(rnd, 3), SamplingParams.greedy(2));
    LlmRequest b = h.add(randomPrompt(rnd, 3), SamplingParams.greedy(10));
    LlmRequest c = h.add(randomPrompt(rnd, 3), SamplingParams.greedy(3));
    int finishStep = -1;
    for (int s = 0; finishStep < 0; s++) {
      assertTrue(h.step());
      for (TokenEvent e : h.events.get(s)) {
        if (e.requestId() == a.id && e.isLast()) {
          finishStep = s;
        }
      }
      assertFalse(h.steps.get(s).requests.contains(c), "c joined before a seat was free");
    }
    assertFalse(h.scheduler.kv().holds(a.id), "finished request still holds blocks");
    h.step();
    ScheduledStep next = h.steps.get(finishStep + 1);
    assertEquals(List.of(b, c), next.requests);
    h.runAll();
    assertEquals(2, a.numGenerated());
    assertEquals(10, b.numGenerated());
    assertEquals(3, c.numGenerated());
  }

  @Test
  void seededSamplingDoesNotDependOnTheBatch() {
    SamplingParams sampled =
        SamplingParams.builder()
            .temperature(0.9)
            .topK(20)
            .topP(0.95)
            .repetitionPenalty(1.1)
            .seed(77)
            .maxNewTokens(30)
            .build();
    int[] prompt = randomPrompt(new SplittableRandom(6), 9);

    Harness alone = new Harness(new SchedulerConfig(8, 64, 0, true), 128);
    LlmRequest solo = alone.add(prompt, sampled);
    alone.runAll();

    // Busy and short of blocks: other seeded requests around it, preemptions likely.
    Harness busy = new Harness(new SchedulerConfig(8, 32, 0, true), 16);
    SplittableRandom rnd = new SplittableRandom(7);
    for (int i = 0; i < 3; i++) {
      busy.add(randomPrompt(rnd, 7), SamplingParams.builder().seed(i).maxNewTokens(25).build());
    }
    LlmRequest inBatch = busy.add(prompt, sampled);
    for (int i = 0; i < 3; i++) {
      busy.add(randomPrompt(rnd, 7), SamplingParams.builder().seed(i).maxNewTokens(25).build());
    }
    busy.runAll();
    assertTrue(busy.scheduler.preemptions() > 0);
    assertArrayEquals(solo.generatedTokens(), inBatch.generatedTokens());

    Harness otherSeed = new Harness(new SchedulerConfig(8, 64, 0, true), 128);
    LlmRequest other =
        otherSeed.add(
            prompt,
            SamplingParams.builder()
                .temperature(0.9)
                .topK(20)
                .topP(0.95)
                .repetitionPenalty(1.1)
                .seed(78)
                .maxNewTokens(30)
                .build());
    otherSeed.runAll();
    assertFalse(Arrays.equals(solo.generatedTokens(), other.generatedTokens()));
  }
}
