package io.kiln.server;

import io.kiln.execution.llm.EngineStats;
import io.kiln.execution.llm.LlmEngine;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.DistributionSummary;
import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.Meter;
import io.micrometer.core.instrument.Timer;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.micrometer.prometheusmetrics.PrometheusNamingConvention;
import java.time.Duration;

/**
 * The server's metrics in Prometheus text, named like vLLM's with {@code kiln:} for {@code vllm:}:
 * requests by endpoint and status, tokens, latency histograms, the engine's queue, KV usage,
 * preemptions and batch size, and speculative decoding's counts when the engine speculates.
 */
final class ServerMetrics {
  private final PrometheusMeterRegistry registry =
      new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
  private final Counter promptTokens;
  private final Counter generationTokens;
  private final Timer timeToFirstToken;
  private final Timer interTokenLatency;
  private final Timer endToEndLatency;
  private final DistributionSummary batchSize;

  ServerMetrics(LlmEngine engine) {
    registry.config().namingConvention(new ColonPrefix());
    Gauge.builder("kiln:num_requests_running", engine, e -> e.stats().running())
        .description("Requests in the engine's running batch")
        .register(registry);
    Gauge.builder("kiln:num_requests_waiting", engine, e -> e.stats().waiting())
        .description("Requests waiting for the engine")
        .register(registry);
    Gauge.builder("kiln:kv_cache_usage_perc", engine, e -> e.stats().kvUsage())
        .description("Share of the usable KV cache blocks in use, 0 to 1")
        .register(registry);
    FunctionCounter.builder("kiln:num_preemptions", engine, e -> e.stats().preemptions())
        .description("Requests preempted for lack of KV blocks")
        .register(registry);
    if (engine.speculativeConfig() != null) {
      speculation(engine);
    }
    promptTokens =
        Counter.builder("kiln:prompt_tokens").description("Prompt tokens").register(registry);
    generationTokens =
        Counter.builder("kiln:generation_tokens")
            .description("Generated tokens")
            .register(registry);
    timeToFirstToken = latency("kiln:time_to_first_token", "Time to the first token");
    interTokenLatency = latency("kiln:inter_token_latency", "Time between two tokens");
    endToEndLatency = latency("kiln:e2e_request_latency", "Time from arrival to the last token");
    batchSize =
        DistributionSummary.builder("kiln:batch_size")
            .description("Running requests, sampled while the engine has work")
            .serviceLevelObjectives(1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
            .register(registry);
  }

  /** Registered only when the engine speculates: without it they could only ever read zero. */
  private void speculation(LlmEngine engine) {
    FunctionCounter.builder(
            "kiln:spec_proposed_tokens", engine, e -> e.stats().speculativeProposed())
        .description("Tokens proposed by speculative decoding")
        .register(registry);
    FunctionCounter.builder(
            "kiln:spec_accepted_tokens", engine, e -> e.stats().speculativeAccepted())
        .description("Proposed tokens the model kept")
        .register(registry);
    FunctionCounter.builder(
            "kiln:spec_verification_steps", engine, e -> e.stats().speculativeSteps())
        .description("Verifications: a request checking its proposed tokens in one step")
        .register(registry);
    Gauge.builder("kiln:spec_acceptance_rate", engine, e -> e.stats().acceptanceRate())
        .description("Accepted over proposed tokens since start, 0 to 1 (NaN before any)")
        .register(registry);
    Gauge.builder("kiln:spec_draft_kv_blocks_used", engine, e -> e.stats().draftKvBlocksUsed())
        .description("Blocks of the draft model's KV pool that requests hold")
        .register(registry);
  }

  private Timer latency(String name, String description) {
    return Timer.builder(name)
        .description(description)
        .serviceLevelObjectives(
            Duration.ofMillis(1),
            Duration.ofMillis(5),
            Duration.ofMillis(10),
            Duration.ofMillis(25),
            Duration.ofMillis(50),
            Duration.ofMillis(100),
            Duration.ofMillis(250),
            Duration.ofMillis(500),
            Duration.ofSeconds(1),
            Duration.ofSeconds(2),
            Duration.ofSeconds(5),
            Duration.ofSeconds(10),
            Duration.ofSeconds(30),
            Duration.ofSeconds(60))
        .register(registry);
  }

  void request(String endpoint, int status) {
    registry
        .counter("kiln:http_requests", "endpoint", endpoint, "status", Integer.toString(status))
        .increment();
  }

  void prompt(int tokens) {
    promptTokens.increment(tokens);
  }

  void token(double gapSeconds, boolean first) {
    generationTokens.increment();
    (first ? timeToFirstToken : interTokenLatency).record(seconds(gapSeconds));
  }

  void finished(double endToEndSeconds, String finishReason) {
    endToEndLatency.record(seconds(endToEndSeconds));
    registry.counter("kiln:request_success", "finished_reason", finishReason).increment();
  }

  void sample(EngineStats stats) {
    if (stats.running() > 0) {
      batchSize.record(stats.running());
    }
  }

  String scrape() {
    return registry.scrape();
  }

  void close() {
    registry.close();
  }

  /** Prometheus names as Micrometer makes them, with vLLM's colon after the prefix kept. */
  private static final class ColonPrefix extends PrometheusNamingConvention {
    @Override
    public String name(String name, Meter.Type type, String baseUnit) {
      String converted = super.name(name, type, baseUnit);
      return converted.startsWith("kiln_") ? "kiln:" + converted.substring(5) : converted;
    }
  }

  private static Duration seconds(double s) {
    return Duration.ofNanos((long) (s * 1e9));
  }
}
