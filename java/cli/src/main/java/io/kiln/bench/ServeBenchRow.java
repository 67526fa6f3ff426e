package io.kiln.bench;

import java.util.LinkedHashMap;
import java.util.Map;

/** One concurrency level of a benchmark over HTTP. */
public record ServeBenchRow(
    int concurrency,
    int requests,
    long generatedTokens,
    double seconds,
    double ttftP50Millis,
    double ttftP99Millis,
    double itlP50Millis,
    double itlP99Millis) {

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
    return o;
  }
}
