package io.kiln.cli;

import io.kiln.bench.LlmBenchReport;
import io.kiln.bench.LlmBenchRow;
import io.kiln.bench.ServeBenchmark;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code kiln bench-serve}: load a running OpenAI-compatible server over HTTP. */
@Command(
    name = "bench-serve",
    description = {
      "Benchmark a running server (kiln serve, or any OpenAI-compatible one that streams"
          + " token_ids) over HTTP: output tokens/s, TTFT and ITL p50/p99 per concurrency."
    })
final class BenchServeCommand implements Callable<Integer> {
  @Option(
      names = "--url",
      defaultValue = "http://127.0.0.1:8000",
      description = "the server (default: http://127.0.0.1:8000)")
  String url;

  @Option(names = "--model", description = "model name (default: the server's first)")
  String model;

  @Option(names = "--api-key", description = "bearer key (default: env KILN_API_KEY)")
  String apiKey;

  @Option(
      names = "--concurrency",
      split = ",",
      defaultValue = "1,8,32,128",
      description = "requests in flight, one row each (default: 1,8,32,128)")
  List<Integer> concurrency;

  @Option(names = "--prompt-len", defaultValue = "128", description = "default: 128")
  int promptLength;

  @Option(names = "--gen-len", defaultValue = "128", description = "default: 128")
  int generateLength;

  @Option(names = "--requests", description = "requests per row (default: 4 x concurrency, >= 8)")
  Integer requests;

  @Option(
      names = "--request-rate",
      defaultValue = "0",
      description = "Poisson arrivals per second; 0 sends as fast as concurrency allows (default)")
  double requestRate;

  @Option(names = "--seed", defaultValue = "42", description = "prompt seed (default: 42)")
  long seed;

  @Mixin ReportOptions reportOptions;

  @CommandLine.Spec CommandLine.Model.CommandSpec spec;

  @Override
  public Integer call() {
    OptionRanges.eachBetween(spec, "--concurrency", concurrency, 1, 1 << 14);
    OptionRanges.between(spec, "--prompt-len", promptLength, 1, 1 << 20);
    OptionRanges.between(spec, "--gen-len", generateLength, 1, 1 << 20);
    OptionRanges.between(spec, "--request-rate", requestRate, 0.0, 1e6);
    if (requests != null) {
      OptionRanges.between(spec, "--requests", requests, 1, 1 << 24);
    }
    String key = apiKey != null ? apiKey : System.getenv("KILN_API_KEY");
    int maxConcurrency = concurrency.stream().mapToInt(Integer::intValue).max().orElse(1);
    LlmBenchReport report;
    try (ServeBenchmark bench =
        new ServeBenchmark(
            new ServeBenchmark.Options(
                url, key, model, promptLength, generateLength, requestRate, seed),
            maxConcurrency)) {
      String served = bench.model();
      Map<String, Object> header = reportOptions.header("kiln bench-serve " + served);
      header.put("url", url);
      header.put("model", served);
      header.put("prompt_len", promptLength);
      header.put("gen_len", generateLength);
      header.put("request_rate", requestRate > 0 ? requestRate : "closed loop");
      ReportOptions.machine(header);
      report = new LlmBenchReport(header);
      for (int c : concurrency) {
        int n = requests != null ? requests : Math.max(8, 4 * c);
        LlmBenchRow row = bench.run(served, c, n);
        report.add(row);
        spec.commandLine()
            .getErr()
            .printf(
                "concurrency %d: %.1f output tokens/s, TTFT p50 %.1f ms%n",
                c, row.outputTokensPerSecond(), row.ttftP50Millis());
      }
    }
    reportOptions.write(spec.commandLine().getOut(), report);
    return ExitCodes.OK;
  }
}
