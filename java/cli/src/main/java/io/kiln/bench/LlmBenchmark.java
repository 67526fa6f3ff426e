package io.kiln.bench;

import io.kiln.execution.llm.EngineStats;
import io.kiln.execution.llm.GenerationHandle;
import io.kiln.execution.llm.GenerationResult;
import io.kiln.execution.llm.LlmEngine;
import io.kiln.execution.llm.ModelRunner;
import io.kiln.execution.llm.SamplingParams;
import io.kiln.execution.llm.SchedulerConfig;
import io.kiln.execution.llm.SpeculativeConfig;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Semaphore;
import java.util.function.Consumer;

/**
 * Serving benchmark: at each concurrency level, that many clients keep one request each in flight
 * (a new one as soon as theirs ends) until the level's requests are done. Prompts are random token
 * ids (see {@link #randomPrompts}), so the prefix cache helps only where they share a prefix (see
 * {@link #withSharedPrefix}); every request generates exactly the asked tokens.
 */
public final class LlmBenchmark {
  private LlmBenchmark() {}

  /**
   * The engine under test: the model's runner and scheduler settings, and how it speculates.
   *
   * @param speculative null for plain decoding
   * @param draft the draft model's runner for draft speculation, else null
   */
  public record Setup(
      ModelRunner runner,
      SchedulerConfig scheduler,
      SpeculativeConfig speculative,
      ModelRunner draft) {
    public static Setup plain(ModelRunner runner, SchedulerConfig scheduler) {
      return new Setup(runner, scheduler, null, null);
    }
  }

  /**
   * The same {@code prompts}, each after one shared prefix of {@code length} seeded random ids (a
   * system prompt every request repeats); the prompts themselves when {@code length} is 0.
   */
  public static List<int[]> withSharedPrefix(
      List<int[]> prompts, int length, int vocab, long seed) {
    if (length == 0) {
      return prompts;
    }
    int[] prefix = randomPrompts(vocab, 1, length, seed).get(0);
    List<int[]> joined = new ArrayList<>(prompts.size());
    for (int[] p : prompts) {
      int[] full = Arrays.copyOf(prefix, length + p.length);
      System.arraycopy(p, 0, full, length, p.length);
      joined.add(full);
    }
    return joined;
  }

  /** {@code requests} prompts of {@code length} seeded random token ids. */
  public static List<int[]> randomPrompts(int vocab, int requests, int length, long seed) {
    SplittableRandom rnd = new SplittableRandom(seed);
    List<int[]> prompts = new ArrayList<>();
    for (int i = 0; i < requests; i++) {
      int[] p = new int[length];
      for (int j = 0; j < length; j++) {
        p[j] = rnd.nextInt(vocab);
      }
      prompts.add(p);
    }
    return prompts;
  }

  /**
   * One level: {@code concurrency} clients work through {@code prompts}, each generating {@code
   * generateLength} greedy tokens, on a fresh engine.
   *
   * @param progress called once per generated token (on the engine thread)
   */
  public static LlmBenchRow run(
      Setup setup, int concurrency, List<int[]> prompts, int generateLength, Runnable progress) {
    return run(setup, concurrency, prompts, generateLength, progress, result -> {});
  }

  /** {@link #run}, handing each request's result to {@code finished} in prompt order. */
  public static LlmBenchRow run(
      Setup setup,
      int concurrency,
      List<int[]> prompts,
      int generateLength,
      Runnable progress,
      Consumer<GenerationResult> finished) {
    SamplingParams params =
        SamplingParams.builder()
            .temperature(0)
            .maxNewTokens(generateLength)
            .ignoreEos(true)
            .build();
    Semaphore slots = new Semaphore(concurrency);
    List<CompletableFuture<GenerationResult>> results = new ArrayList<>();
    long start;
    long end;
    EngineStats before;
    EngineStats stats;
    try (LlmEngine engine =
        new LlmEngine(setup.runner(), setup.scheduler(), setup.speculative(), setup.draft())) {
      before = engine.stats();
      start = System.nanoTime();
      for (int[] prompt : prompts) {
        slots.acquireUninterruptibly();
        GenerationHandle h = engine.submit(prompt, params, event -> progress.run());
        results.add(h.result().whenComplete((r, e) -> slots.release()));
      }
      CompletableFuture.allOf(results.toArray(CompletableFuture[]::new)).join();
      end = System.nanoTime();
      stats = engine.stats();
    }
    List<Double> ttft = new ArrayList<>();
    List<Double> itl = new ArrayList<>();
    long generated = 0;
    long preemptions = 0;
    long promptTokens = 0;
    for (int[] prompt : prompts) {
      promptTokens += prompt.length;
    }
    for (CompletableFuture<GenerationResult> f : results) {
      GenerationResult r = f.join();
      finished.accept(r);
      generated += r.newTokenIds().length;
      preemptions += r.metrics().preemptions();
      ttft.add(r.metrics().ttftMillis());
      for (double gap : r.metrics().interTokenMillis()) {
        itl.add(gap);
      }
    }
    return new LlmBenchRow(
        concurrency,
        prompts.size(),
        generated,
        (end - start) / 1e9,
        percentile(ttft, 0.5),
        percentile(ttft, 0.99),
        percentile(itl, 0.5),
        percentile(itl, 0.99),
        mean(itl),
        new LlmBenchRow.KvUse(
            stats.peakKvBlocksUsed(),
            stats.kvBlocksUsable(),
            preemptions,
            stats.prefixCacheHitTokens() - before.prefixCacheHitTokens(),
            promptTokens),
        setup.speculative() == null ? null : LlmBenchRow.Speculation.between(before, stats),
        LlmBenchRow.StepTimes.between(before, stats));
  }

  /** Mean of the samples; NaN for none. */
  static double mean(List<Double> samples) {
    return samples.stream().mapToDouble(Double::doubleValue).average().orElse(Double.NaN);
  }

  /** Nearest-rank percentile; NaN for no samples. */
  static double percentile(List<Double> samples, double q) {
    if (samples.isEmpty()) {
      return Double.NaN;
    }
    double[] s = samples.stream().mapToDouble(Double::doubleValue).toArray();
    Arrays.sort(s);
    int rank = (int) Math.ceil(q * s.length);
    return s[Math.max(0, Math.min(s.length - 1, rank - 1))];
  }
}
