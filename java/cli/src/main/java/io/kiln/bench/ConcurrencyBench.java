package io.kiln.bench;

import io.kiln.Device;
import io.kiln.Precision;
import io.kiln.Tensor;
import io.kiln.embedding.DefaultEmbeddingModel;
import io.kiln.model.ModelSource;
import io.kiln.session.Session;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Calls per second of concurrent {@link Session#infer} callers with the session's default dynamic
 * batching, with merging forced on and with it off, measured in alternating rounds in one run, so
 * that the default can be held to at least the better of the two on this backend. On CUDA the
 * TensorRT plan is built once into {@code --cache-dir} and every later session loads it.
 *
 * <p>{@code java -cp kiln.jar:lib/* io.kiln.bench.ConcurrencyBench [--threads 16] [--seq 32]
 * [--seconds 3] [--rounds 4] [--model FILE.onnx] [--device cpu|cuda] [--precision fp32|fp16]
 * [--cache-dir DIR] --out bench/results/NAME}
 */
public final class ConcurrencyBench {
  private enum Mode {
    DEFAULT,
    MERGED,
    DIRECT
  }

  private ConcurrencyBench() {}

  public static void main(String[] args) throws Exception {
    Map<String, String> a = new LinkedHashMap<>();
    for (int i = 0; i + 1 < args.length; i += 2) {
      a.put(args[i], args[i + 1]);
    }
    int threads = Integer.parseInt(a.getOrDefault("--threads", "16"));
    int seq = Integer.parseInt(a.getOrDefault("--seq", "32"));
    double seconds = Double.parseDouble(a.getOrDefault("--seconds", "3"));
    int rounds = Integer.parseInt(a.getOrDefault("--rounds", "4"));
    Path out = Path.of(a.getOrDefault("--out", "bench/results/cpu-concurrency"));
    Device device = Device.parse(a.getOrDefault("--device", "cpu"));
    Precision precision = Precision.parse(a.getOrDefault("--precision", "fp32"));
    Path cacheDir =
        a.containsKey("--cache-dir")
            ? Path.of(a.get("--cache-dir"))
            : Files.createTempDirectory("kiln-concurrency-bench");
    ModelSource model =
        a.containsKey("--model")
            ? ModelSource.of(Path.of(a.get("--model")))
            : ModelSource.ofResource(DefaultEmbeddingModel.get().modelResource());
    Instant started = Instant.now();
    Map<Mode, List<Double>> rates = new LinkedHashMap<>();
    String backend = null;
    for (int round = 0; round < rounds; round++) {
      for (Mode mode : Mode.values()) {
        Session.Builder b =
            Session.builder(model)
                .device(device)
                .precision(precision)
                .cacheDir(cacheDir)
                .intraOpThreads(1)
                .maxBatchSize(threads);
        if (mode != Mode.DEFAULT) {
          b.dynamicBatching(mode == Mode.MERGED);
        }
        try (Session session = b.build()) {
          backend = session.backendName() + " on " + session.deviceDescription();
          double rate = callsPerSecond(session, threads, seq, seconds);
          rates.computeIfAbsent(mode, m -> new ArrayList<>()).add(rate);
          System.err.printf(Locale.ROOT, "round %d %-7s %8.1f calls/s%n", round, mode, rate);
        }
      }
    }
    write(out, model, backend, threads, seq, seconds, rounds, started, rates);
  }

  /** {@code threads} callers, each on its own one-row input, for {@code seconds}. */
  static double callsPerSecond(Session session, int threads, int seq, double seconds)
      throws Exception {
    InputFactory factory = new InputFactory(session.inputs(), session.indexRanges(), 0, 7);
    List<Map<String, Tensor>> inputs = new ArrayList<>();
    for (int t = 0; t < threads; t++) {
      inputs.add(factory.make(1, seq));
    }
    AtomicLong calls = new AtomicLong();
    CyclicBarrier start = new CyclicBarrier(threads + 1);
    long[] window = new long[1];
    List<Thread> workers = new ArrayList<>();
    for (int t = 0; t < threads; t++) {
      Map<String, Tensor> in = inputs.get(t);
      Thread w =
          new Thread(
              () -> {
                try {
                  start.await();
                  while (System.nanoTime() < window[0]) {
                    session.infer(in).close();
                    calls.incrementAndGet();
                  }
                } catch (Exception e) {
                  throw new IllegalStateException(e);
                }
              });
      workers.add(w);
      w.start();
    }
    window[0] = System.nanoTime() + (long) (seconds * 1e9);
    long t0 = System.nanoTime();
    start.await();
    for (Thread w : workers) {
      w.join();
    }
    double elapsed = (System.nanoTime() - t0) / 1e9;
    inputs.forEach(m -> m.values().forEach(Tensor::close));
    return calls.get() / elapsed;
  }

  private static void write(
      Path out,
      ModelSource model,
      String backend,
      int threads,
      int seq,
      double seconds,
      int rounds,
      Instant started,
      Map<Mode, List<Double>> rates) {
    Map<String, Object> json = new LinkedHashMap<>();
    json.put("bench", "concurrent infer calls, default vs merged vs direct");
    json.put("measured", started + " to " + Instant.now());
    json.put("model", model.name());
    json.put("backend", backend);
    json.put("threads", threads);
    json.put("seq", seq);
    json.put("seconds_per_round", seconds);
    json.put("rounds", rounds);
    json.put("machine", MachineInfo.describe());
    Map<String, Object> medians = new LinkedHashMap<>();
    rates.forEach(
        (mode, list) ->
            medians.put(mode.name().toLowerCase(Locale.ROOT), ModelBenchmark.median(list)));
    json.put("calls_per_second_median", medians);
    json.put("calls_per_second_rounds", rates);
    double defaultRate = ModelBenchmark.median(rates.get(Mode.DEFAULT));
    double direct = ModelBenchmark.median(rates.get(Mode.DIRECT));
    double merged = ModelBenchmark.median(rates.get(Mode.MERGED));
    json.put("default_over_direct", defaultRate / direct);
    json.put("default_over_merged", defaultRate / merged);
    ReportFiles.writeJson(Path.of(out + ".json"), json);
    StringBuilder md = new StringBuilder();
    md.append("# Concurrent infer calls: default dynamic batching vs merged vs direct\n\n");
    md.append("- measured: ").append(json.get("measured")).append('\n');
    md.append("- machine: ").append(json.get("machine")).append('\n');
    md.append("- model: ").append(model.name()).append(", backend ").append(backend).append('\n');
    md.append(
        String.format(
            Locale.ROOT,
            "- %d threads, one row of %d tokens per call, 1 compute thread per call,"
                + " %d rounds of %.1f s per mode, modes alternating%n%n",
            threads,
            seq,
            rounds,
            seconds));
    md.append("| mode | calls/s (median) | rounds |\n|---|---:|---|\n");
    rates.forEach(
        (mode, list) ->
            md.append(
                String.format(
                    Locale.ROOT,
                    "| %s | %.1f | %s |%n",
                    mode.name().toLowerCase(Locale.ROOT),
                    ModelBenchmark.median(list),
                    list.stream().map(r -> String.format(Locale.ROOT, "%.0f", r)).toList())));
    md.append(
        String.format(
            Locale.ROOT,
            "%nDefault / direct: **%.3f×**; default / merged: %.3f×.%n",
            defaultRate / direct,
            defaultRate / merged));
    ReportFiles.writeText(Path.of(out + ".md"), md.toString());
    System.out.print(md);
  }
}
