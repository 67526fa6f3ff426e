package io.kiln.cli;

import io.kiln.InvalidInputException;
import io.kiln.bench.BenchMode;
import io.kiln.bench.BenchReport;
import io.kiln.bench.ModelBenchmark;
import io.kiln.bench.RawOrtPeer;
import io.kiln.embedding.DefaultEmbeddingModel;
import io.kiln.model.ModelSource;
import io.kiln.session.Session;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code kiln bench [MODEL]}: throughput, utilization, memory and latency per batch size. */
@Command(
    name = "bench",
    description = {
      "Benchmark a model per batch size: items/s, utilization, memory and per-item latency.",
      "On the CPU the same model also runs on raw ONNX Runtime in the same run, and the table"
          + " gives Kiln's time relative to it."
    })
final class BenchCommand implements Callable<Integer> {
  @Parameters(
      index = "0",
      arity = "0..1",
      paramLabel = "MODEL",
      description = "ONNX file (default: the embedded all-MiniLM-L6-v2)")
  Path model;

  @Option(
      names = "--batch",
      split = ",",
      paramLabel = "N[,N...]",
      description = "batch sizes (default: the mode's)")
  List<Integer> batches;

  @Option(names = "--seq", defaultValue = "128", description = "sequence length (default: 128)")
  int seq;

  @Option(names = "--warmup", defaultValue = "3", description = "untimed runs per batch size")
  int warmup;

  @Option(
      names = "--iterations",
      defaultValue = "30",
      description = "timed runs per engine and batch size (default: 30)")
  int iterations;

  @Option(names = "--seconds", description = "at most this long per engine and batch size")
  Double seconds;

  @Option(
      names = "--rounds",
      defaultValue = "5",
      description = "Kiln and the peer alternate this many times per batch size (default: 5)")
  int rounds;

  @Option(
      names = "--mode",
      defaultValue = "default",
      description = "batch, fast, lite, cpu, default or accurate (default: default)")
  String mode;

  @Option(
      names = "--threads",
      description = "CPU threads for Kiln and the peer (default: all" + " cores)")
  Integer threads;

  @Option(
      names = "--vocab",
      description =
          "token ids are drawn below this (default: within the embedding table the model holds)")
  Integer vocabulary;

  @Option(names = "--no-peer", description = "skip the raw ONNX Runtime comparison")
  boolean noPeer;

  @Mixin ReportOptions reportOptions;

  @CommandLine.Spec CommandLine.Model.CommandSpec spec;

  private static final int MAX_SEQ = 1 << 20;
  private static final int MAX_BATCH = 1 << 16;
  private static final long MAX_TOKENS = 1L << 24;

  @Override
  public Integer call() {
    BenchMode preset = parseMode(mode);
    checkRanges();
    PrintWriter out = spec.commandLine().getOut();
    int cpuThreads = threads != null ? threads : Runtime.getRuntime().availableProcessors();
    ModelSource source =
        model != null
            ? ModelSource.of(model)
            : ModelSource.ofResource(DefaultEmbeddingModel.get().modelResource());
    List<Integer> sweep = batches != null ? batches : preset.batches();
    int largest = sweep.stream().mapToInt(Integer::intValue).max().orElse(1);
    Session.Builder builder =
        Session.builder(source)
            .device(preset.device())
            .precision(preset.precision())
            .cudaGraphs(preset.cudaGraphs())
            .intraOpThreads(cpuThreads)
            .maxBatchSize(Math.max(largest, 1));
    try (Session session = builder.build()) {
      Map<String, Object> header =
          reportOptions.header(
              "kiln bench " + (model == null ? "all-MiniLM-L6-v2" : model.getFileName()));
      header.put("model", source.name());
      header.put("model_sha256", source.sha256());
      header.put("mode", preset.name().toLowerCase(java.util.Locale.ROOT));
      header.put("backend", session.backendName() + " (" + session.deviceDescription() + ")");
      header.put("precision", session.precision().name().toLowerCase(java.util.Locale.ROOT));
      header.put("seq", seq);
      header.put("threads", cpuThreads);
      ReportOptions.machine(header);
      String fallback = fallbackNote(preset, session);
      if (fallback != null) {
        header.put("note", fallback);
        System.err.println("note: " + fallback); // stdout carries only the report
      }
      long positions = session.indexRanges().maxSequence();
      if (positions > 0 && seq > positions) {
        throw OptionRanges.usage(
            spec, "--seq " + seq + " is longer than the model's " + positions + " positions");
      }
      boolean onCpu = session.backendName().startsWith("onnxruntime");
      BenchReport report = new BenchReport(header, "CPU %", "RSS MiB");
      ModelBenchmark.Plan plan =
          new ModelBenchmark.Plan(
              sweep,
              seq,
              warmup,
              iterations,
              seconds == null ? Duration.ofHours(1) : Duration.ofMillis((long) (seconds * 1000)),
              rounds,
              vocabulary == null ? 0 : vocabulary,
              42);
      try (RawOrtPeer peer = !noPeer && onCpu ? peerOf(session, cpuThreads) : null) {
        ModelBenchmark.run(session, peer, plan, report, System.err);
      }
      reportOptions.write(out, report);
    }
    return ExitCodes.OK;
  }

  /** Sizes whose inputs would not fit in memory are usage errors, not OutOfMemoryErrors. */
  private void checkRanges() {
    OptionRanges.between(spec, "--seq", seq, 1, MAX_SEQ);
    if (batches != null) {
      OptionRanges.eachBetween(spec, "--batch", batches, 1, MAX_BATCH);
      int largest = batches.stream().mapToInt(Integer::intValue).max().orElse(1);
      if ((long) largest * seq > MAX_TOKENS) {
        throw OptionRanges.usage(
            spec,
            "--batch " + largest + " times --seq " + seq + " exceeds " + MAX_TOKENS + " tokens");
      }
    }
    OptionRanges.between(spec, "--warmup", warmup, 0, 1_000_000);
    OptionRanges.between(spec, "--iterations", iterations, 1, 10_000_000);
    OptionRanges.between(spec, "--rounds", rounds, 1, 1000);
    if (seconds != null) {
      OptionRanges.between(spec, "--seconds", seconds, 0.001, 86_400);
    }
    OptionRanges.threads(spec, "--threads", threads);
    if (vocabulary != null) {
      OptionRanges.between(spec, "--vocab", vocabulary, 2, Integer.MAX_VALUE);
    }
  }

  /** Raw ONNX Runtime on exactly the graph the session runs (after any precision conversion). */
  private static RawOrtPeer peerOf(Session session, int threads) {
    try {
      java.nio.file.Path dir = java.nio.file.Files.createTempDirectory("kiln-bench-peer");
      java.nio.file.Path file = dir.resolve("model.onnx");
      session.exportOnnx(file);
      try {
        return new RawOrtPeer(file, threads);
      } finally {
        // ONNX Runtime has read the model (and any external data) into its session.
        try (var files = java.nio.file.Files.walk(dir)) {
          files.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        }
      }
    } catch (java.io.IOException e) {
      throw new io.kiln.KilnException("cannot stage the peer's model: " + e.getMessage(), e);
    }
  }

  private static BenchMode parseMode(String name) {
    try {
      return BenchMode.valueOf(name.trim().toUpperCase(java.util.Locale.ROOT));
    } catch (IllegalArgumentException e) {
      throw new InvalidInputException(
          "unknown mode '" + name + "'; use batch, fast, lite, cpu, default or accurate");
    }
  }

  /** Says which parts of the preset this machine or build cannot honour. */
  private static String fallbackNote(BenchMode preset, Session session) {
    StringBuilder sb = new StringBuilder();
    if (session.precision() != preset.precision()) {
      sb.append("mode ")
          .append(preset.name().toLowerCase(java.util.Locale.ROOT))
          .append(" asks for ")
          .append(preset.precision())
          .append(", which ")
          .append(session.backendName())
          .append(" cannot run in this build; measuring ")
          .append(session.precision());
    }
    if (preset.cudaGraphs() && session.backendName().startsWith("onnxruntime")) {
      sb.append(sb.length() > 0 ? "; " : "")
          .append("CUDA graphs need a GPU backend; not used on ")
          .append(session.backendName());
    }
    return sb.length() == 0 ? null : sb.toString();
  }
}
