package io.kiln.bench;

import io.kiln.DType;
import io.kiln.Device;
import io.kiln.Tensor;
import io.kiln.execution.llm.GenerationHandle;
import io.kiln.execution.llm.LlmEngine;
import io.kiln.execution.llm.LlmRunners;
import io.kiln.execution.llm.ModelRunner;
import io.kiln.execution.llm.RunnerOptions;
import io.kiln.execution.llm.SamplingParams;
import io.kiln.execution.llm.SchedulerConfig;
import io.kiln.model.llama.RandomLlamaModel;
import io.kiln.session.Session;
import io.kiln.util.ProgressBar;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;
import org.knowm.xchart.XYChart;

/**
 * Long runs that must not leak: {@code cycles} session open/infer/close cycles on an ONNX model,
 * then {@code requests} LLM requests through one engine on a tiny random Llama. Resident memory,
 * open file descriptors and threads are sampled throughout; after a warm-up they must stay flat.
 *
 * <p>{@code java -cp kiln.jar:lib/* io.kiln.bench.SoakBench --model BERT.onnx [--cycles 10000]
 * [--requests 100000] --out bench/results/NAME}
 */
public final class SoakBench {
  /** Samples taken before this share of a phase are warm-up. */
  static final double WARM_UP = 0.1;

  private SoakBench() {}

  /** One reading of the process. */
  record Sample(long done, double rssMiB, int fds, int threads) {}

  public static void main(String[] args) throws Exception {
    Map<String, String> a = new LinkedHashMap<>();
    for (int i = 0; i + 1 < args.length; i += 2) {
      a.put(args[i], args[i + 1]);
    }
    Path model = Path.of(a.get("--model"));
    int cycles = Integer.parseInt(a.getOrDefault("--cycles", "10000"));
    int requests = Integer.parseInt(a.getOrDefault("--requests", "100000"));
    Path out = Path.of(a.getOrDefault("--out", "bench/results/soak"));
    Instant started = Instant.now();
    List<Sample> sessions = sessionCycles(model, cycles);
    List<Sample> llm = llmRequests(requests);
    report(out, model, cycles, requests, started, sessions, llm);
  }

  static List<Sample> sessionCycles(Path model, int cycles) {
    List<Sample> samples = new ArrayList<>();
    ProgressBar bar = new ProgressBar(System.err, cycles);
    int every = Math.max(1, cycles / 200);
    for (int i = 1; i <= cycles; i++) {
      try (Session session = Session.builder(model).device(Device.CPU).intraOpThreads(1).build()) {
        InputFactory inputs = new InputFactory(session.inputs(), session.indexRanges(), 0, i);
        Map<String, Tensor> feed = inputs.make(1, 16);
        try (Session.Result r = session.infer(feed)) {
          r.first().toFloatArray();
        } finally {
          feed.values().forEach(Tensor::close);
        }
      }
      if (i % every == 0) {
        samples.add(sample(i));
      }
      bar.step("session cycles");
    }
    return samples;
  }

  static List<Sample> llmRequests(int requests) throws IOException {
    Path dir = Files.createTempDirectory("kiln-soak");
    RandomLlamaModel.write(
        RandomLlamaModel.shape("tiny"), 11, DType.F32, dir.resolve("tiny"), 1L << 30, f -> {});
    List<Sample> samples = new ArrayList<>();
    ProgressBar bar = new ProgressBar(System.err, requests);
    int every = Math.max(1, requests / 200);
    int inFlight = 64;
    SplittableRandom random = new SplittableRandom(5);
    try (ModelRunner runner =
            LlmRunners.open(
                dir.resolve("tiny"), Device.CPU, RunnerOptions.defaults().withKvBlocks(512));
        LlmEngine engine = new LlmEngine(runner, SchedulerConfig.defaults())) {
      int vocab = runner.spec().vocabSize();
      List<GenerationHandle> window = new ArrayList<>();
      for (int i = 1; i <= requests; i++) {
        int[] prompt = new int[2 + random.nextInt(6)];
        for (int t = 0; t < prompt.length; t++) {
          prompt[t] = 1 + random.nextInt(vocab - 1);
        }
        SamplingParams params =
            i % 2 == 0
                ? SamplingParams.greedy(4)
                : SamplingParams.builder().temperature(0.8).maxNewTokens(4).seed(i).build();
        window.add(engine.submit(prompt, params, event -> {}));
        if (window.size() == inFlight) {
          for (GenerationHandle h : window) {
            h.result().join();
          }
          window.clear();
        }
        if (i % every == 0) {
          samples.add(sample(i));
        }
        bar.step("LLM requests");
      }
      for (GenerationHandle h : window) {
        h.result().join();
      }
    }
    return samples;
  }

  static Sample sample(long done) {
    return new Sample(done, ProcessMonitor.residentMiB(), openFiles(), Thread.activeCount());
  }

  private static int openFiles() {
    try (var fds = Files.list(Path.of("/proc/self/fd"))) {
      return (int) fds.count();
    } catch (IOException e) {
      return -1;
    }
  }

  /** Growth after warm-up: the largest minus the smallest reading. */
  static Map<String, Object> growth(List<Sample> samples) {
    List<Sample> steady = samples.subList((int) (samples.size() * WARM_UP), samples.size());
    Map<String, Object> g = new LinkedHashMap<>();
    g.put("samples", samples.size());
    g.put("rss_first_mib", steady.get(0).rssMiB());
    g.put("rss_last_mib", steady.get(steady.size() - 1).rssMiB());
    g.put(
        "rss_spread_mib",
        steady.stream().mapToDouble(Sample::rssMiB).max().orElse(0)
            - steady.stream().mapToDouble(Sample::rssMiB).min().orElse(0));
    // A leak climbs; allocator churn goes up and down. The mean of the last quarter of the steady
    // readings against the first quarter's tells them apart.
    int quarter = Math.max(1, steady.size() / 4);
    double firstQuarter =
        steady.subList(0, quarter).stream().mapToDouble(Sample::rssMiB).average().orElse(0);
    double lastQuarter =
        steady.subList(steady.size() - quarter, steady.size()).stream()
            .mapToDouble(Sample::rssMiB)
            .average()
            .orElse(0);
    g.put("rss_trend_mib", lastQuarter - firstQuarter);
    g.put(
        "fd_growth",
        steady.get(steady.size() - 1).fds()
            - steady.stream().mapToInt(Sample::fds).min().orElse(0));
    g.put(
        "thread_growth",
        steady.get(steady.size() - 1).threads()
            - steady.stream().mapToInt(Sample::threads).min().orElse(0));
    return g;
  }

  private static void report(
      Path out,
      Path model,
      int cycles,
      int requests,
      Instant started,
      List<Sample> sessions,
      List<Sample> llm) {
    Map<String, Object> json = new LinkedHashMap<>();
    json.put("bench", "soak: session cycles, then LLM requests");
    json.put("measured", started + " to " + Instant.now());
    json.put("machine", MachineInfo.describe());
    json.put("model", model.toString());
    json.put("session_cycles", cycles);
    json.put("llm_requests", requests);
    json.put("sessions", growth(sessions));
    json.put("llm", growth(llm));
    json.put("session_samples", sessions);
    json.put("llm_samples", llm);
    ReportFiles.writeJson(Path.of(out + ".json"), json);
    StringBuilder md = new StringBuilder("# Soak: no growth in long runs\n\n");
    md.append("- measured: ").append(json.get("measured")).append('\n');
    md.append("- machine: ").append(json.get("machine")).append('\n');
    md.append(
        String.format(
            Locale.ROOT,
            "- %d session open/infer/close cycles on %s (CPU, 1 thread), then %d LLM requests"
                + " (2-7 prompt tokens, 4 new, half greedy, half sampled; 64 in flight) through"
                + " one engine on a tiny random Llama (CPU)%n"
                + "- growth is measured after the first %.0f%% of each phase (warm-up)%n%n",
            cycles,
            model.getFileName(),
            requests,
            WARM_UP * 100));
    md.append(
        "| phase | RSS first | RSS last | RSS spread (max - min) | RSS trend (last quarter - first"
            + " quarter, means) | fd growth | thread growth |\n");
    md.append("|---|---:|---:|---:|---:|---:|---:|\n");
    row(md, "session cycles", growth(sessions));
    row(md, "LLM requests", growth(llm));
    ReportFiles.writeText(Path.of(out + ".md"), md.toString());
    XYChart rss = Charts.lines(700, 420, "Resident memory", "work done (share of phase)", "MiB");
    Charts.addLine(rss, "session cycles", share(sessions), rssOf(sessions));
    Charts.addLine(rss, "LLM requests", share(llm), rssOf(llm));
    Charts.savePng(Path.of(out + ".png"), List.of(rss));
    System.out.print(md);
  }

  private static void row(StringBuilder md, String name, Map<String, Object> g) {
    md.append(
        String.format(
            Locale.ROOT,
            "| %s | %.1f MiB | %.1f MiB | %.1f MiB | %+.1f MiB | %d | %d |%n",
            name,
            (double) g.get("rss_first_mib"),
            (double) g.get("rss_last_mib"),
            (double) g.get("rss_spread_mib"),
            (double) g.get("rss_trend_mib"),
            (int) g.get("fd_growth"),
            (int) g.get("thread_growth")));
  }

  private static double[] share(List<Sample> samples) {
    long last = samples.get(samples.size() - 1).done();
    return samples.stream().mapToDouble(s -> s.done() / (double) last).toArray();
  }

  private static double[] rssOf(List<Sample> samples) {
    return samples.stream().mapToDouble(Sample::rssMiB).toArray();
  }
}
