package io.kiln.bench;

import io.kiln.execution.llm.EngineStats;
import io.kiln.execution.llm.GenerationHandle;
import io.kiln.execution.llm.GenerationResult;
import io.kiln.execution.llm.LlmEngine;
import io.kiln.execution.llm.ModelRunner;
import io.kiln.execution.llm.SamplingParams;
import io.kiln.execution.llm.SchedulerConfig;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Semaphore;

/**
 * Serving benchmark: at each concurrency level, that many clients keep one request each in flight
 * (a new one as soon as theirs ends) until the level's requests are done. Prompts are random token
 * ids, so the prefix cache does not help; every request generates exactly the asked tokens.
 */
public final class LlmBenchmark {
  private LlmBenchmark() {}

  /**
   * @param requests requests at this level
   * @param progress called once per generated token (on the engine thread)
   */
  public static LlmBenchRow run(
      ModelRunner runner,
      SchedulerConfig config,
      int concurrency,
      int requests,
      int promptLength,
      int generateLength,
      long seed,
      Runnable progress) {
    SplittableRandom rnd = new SplittableRandom(seed);
    int vocab = runner.spec().vocabSize();
    List<int[]> prompts = new ArrayList<>();
    for (int i = 0; i < requests; i++) {
      int[] p = new int[promptLength];
      for (int j = 0; j < promptLength; j++) {
        p[j] = rnd.nextInt(vocab);
      }
      prompts.add(p);
    }
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
    EngineStats stats;
    try (LlmEngine engine = new LlmEngine(runner, config)) {
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
    for (CompletableFuture<GenerationResult> f : results) {
      GenerationResult r = f.join();
      generated += r.newTokenIds().length;
      preemptions += r.metrics().preemptions();
      ttft.add(r.metrics().ttftMillis());
      for (double gap : r.metrics().interTokenMillis()) {
        itl.add(gap);
      }
    }
    return new LlmBenchRow(
        concurrency,
        requests,
        generated,
        (end - start) / 1e9,
        percentile(ttft, 0.5),
        percentile(ttft, 0.99),
        percentile(itl, 0.5),
        percentile(itl, 0.99),
        new LlmBenchRow.KvUse(stats.peakKvBlocksUsed(), stats.kvBlocksUsable(), preemptions));
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
