package io.kiln.bench;

import io.kiln.execution.llm.EngineStats;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * One concurrency level of an LLM benchmark, in process or over HTTP.
 *
 * @param itlMeanMillis mean gap between a request's tokens: the inverse of its decode rate, which
 *     the percentiles miss when speculation makes tokens arrive in bursts
 * @param kv the engine's KV cache use, known in process; null over HTTP
 * @param speculation the engine's speculation over the level, known in process when it speculates;
 *     null otherwise
 * @param steps where the engine's step time went over the level, known in process; null over HTTP
 */
public record LlmBenchRow(
    int concurrency,
    int requests,
    long generatedTokens,
    double seconds,
    double ttftP50Millis,
    double ttftP99Millis,
    double itlP50Millis,
    double itlP99Millis,
    double itlMeanMillis,
    KvUse kv,
    Speculation speculation,
    StepTimes steps) {

  /**
   * KV blocks in use at the peak, of those usable, requests preempted for lack of them, and the
   * prompt tokens the prefix cache spared of all prompt tokens submitted.
   */
  public record KvUse(
      int peakKvBlocks, int kvBlocks, long preemptions, long prefixHitTokens, long promptTokens) {
    public double peakKvUsage() {
      return peakKvBlocks / (double) kvBlocks;
    }

    /** Share of the prompt tokens taken from the prefix cache instead of computed. */
    public double prefixHitRate() {
      return promptTokens == 0 ? 0 : prefixHitTokens / (double) promptTokens;
    }
  }

  /**
   * The engine's decode steps (no prompt work) over a level and the mean wall time of one: in all,
   * proposing speculative tokens (the draft's calls), and the target model's call; the rest is the
   * engine's own work.
   */
  public record StepTimes(
      long steps, double stepMillis, double proposeMillis, double forwardMillis) {
    public static StepTimes between(EngineStats before, EngineStats after) {
      long steps = after.decodeSteps() - before.decodeSteps();
      double per = steps == 0 ? Double.NaN : 1e-6 / steps;
      return new StepTimes(
          steps,
          (after.decodeStepNanos() - before.decodeStepNanos()) * per,
          (after.decodeProposeNanos() - before.decodeProposeNanos()) * per,
          (after.decodeForwardNanos() - before.decodeForwardNanos()) * per);
    }
  }

  /**
   * Speculation counts over a level: verification steps, tokens proposed and tokens the model kept.
   */
  public record Speculation(long steps, long proposed, long accepted) {
    /** The engine's counts between two of its snapshots. */
    public static Speculation between(EngineStats before, EngineStats after) {
      return new Speculation(
          after.speculativeSteps() - before.speculativeSteps(),
          after.speculativeProposed() - before.speculativeProposed(),
          after.speculativeAccepted() - before.speculativeAccepted());
    }

    /** Accepted over proposed; NaN when nothing was proposed. */
    public double acceptanceRate() {
      return proposed == 0 ? Double.NaN : accepted / (double) proposed;
    }

    /** Tokens one verification yields on average: those accepted plus the model's own. */
    public double meanAcceptedLength() {
      return steps == 0 ? Double.NaN : 1 + accepted / (double) steps;
    }
  }

  public double outputTokensPerSecond() {
    return generatedTokens / seconds;
  }

  /** A request's decode rate: tokens after its first per second, from the mean gap. */
  public double decodeTokensPerSecond() {
    return 1e3 / itlMeanMillis;
  }

  public double requestsPerSecond() {
    return requests / seconds;
  }

  Map<String, Object> toJson() {
    Map<String, Object> o = new LinkedHashMap<>();
    o.put("concurrency", concurrency);
    o.put("requests", requests);
    o.put("generated_tokens", generatedTokens);
    o.put("seconds", seconds);
    o.put("output_tokens_per_second", outputTokensPerSecond());
    o.put("requests_per_second", requestsPerSecond());
    o.put("ttft_p50_ms", ttftP50Millis);
    o.put("ttft_p99_ms", ttftP99Millis);
    o.put("itl_p50_ms", itlP50Millis);
    o.put("itl_p99_ms", itlP99Millis);
    o.put("itl_mean_ms", finiteOrNull(itlMeanMillis));
    o.put("decode_tokens_per_second_per_request", finiteOrNull(decodeTokensPerSecond()));
    if (kv != null) {
      o.put("peak_kv_blocks", kv.peakKvBlocks());
      o.put("kv_blocks", kv.kvBlocks());
      o.put("peak_kv_usage", kv.peakKvUsage());
      o.put("preemptions", kv.preemptions());
      o.put("prefix_cache_hit_tokens", kv.prefixHitTokens());
      o.put("prefix_cache_hit_rate", kv.prefixHitRate());
    }
    if (steps != null) {
      o.put("decode_steps", steps.steps());
      o.put("decode_step_ms_mean", finiteOrNull(steps.stepMillis()));
      o.put("decode_propose_ms_mean", finiteOrNull(steps.proposeMillis()));
      o.put("decode_forward_ms_mean", finiteOrNull(steps.forwardMillis()));
    }
    if (speculation != null) {
      o.put("spec_steps", speculation.steps());
      o.put("spec_proposed", speculation.proposed());
      o.put("spec_accepted", speculation.accepted());
      o.put("spec_acceptance_rate", finiteOrNull(speculation.acceptanceRate()));
      o.put("spec_mean_accepted_length", finiteOrNull(speculation.meanAcceptedLength()));
    }
    return o;
  }

  /** JSON has no NaN: a rate of nothing is null. */
  private static Double finiteOrNull(double v) {
    return Double.isFinite(v) ? v : null;
  }
}
