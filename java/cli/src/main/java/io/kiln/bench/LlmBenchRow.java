package io.kiln.bench;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * One concurrency level of an LLM benchmark, in process or over HTTP.
 *
 * @param kv the engine's KV cache use, known in process; null over HTTP
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
    KvUse kv) {

  /** KV blocks in use at the peak, of those usable, and requests preempted for lack of them. */
  public record KvUse(int peakKvBlocks, int kvBlocks, long preemptions) {
    public double peakKvUsage() {
      return peakKvBlocks / (double) kvBlocks;
    }
  }

  public double outputTokensPerSecond() {
    return generatedTokens / seconds;
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
    if (kv != null) {
      o.put("peak_kv_blocks", kv.peakKvBlocks());
      o.put("kv_blocks", kv.kvBlocks());
      o.put("peak_kv_usage", kv.peakKvUsage());
      o.put("preemptions", kv.preemptions());
    }
    return o;
  }
}
