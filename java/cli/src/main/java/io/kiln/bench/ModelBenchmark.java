package io.kiln.bench;

import io.kiln.BenchmarkResult;
import io.kiln.Tensor;
import io.kiln.session.Session;
import io.kiln.util.ProgressBar;
import io.kiln.util.Stopwatch;
import java.io.PrintStream;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * Measures a session per batch size and, in the same run, the same model on raw ONNX Runtime with
 * the same inputs and threads. The two alternate in rounds so that a change in machine load hits
 * both alike; the overhead is the median of the per-round latency ratios.
 */
public final class ModelBenchmark {

  /**
   * What to run.
   *
   * @param iterations timed runs per engine and batch size, spread over {@code rounds}
   * @param maxTimePerBatch caps the timed runs per engine and batch size
   * @param vocabulary token ids are drawn from {@code [1, vocabulary)}; 0 for the tables the model
   *     itself holds
   */
  public record Plan(
      List<Integer> batches,
      int seq,
      int warmup,
      int iterations,
      Duration maxTimePerBatch,
      int rounds,
      int vocabulary,
      long seed) {
    public Plan {
      if (batches.isEmpty() || batches.stream().anyMatch(b -> b < 1)) {
        throw new io.kiln.InvalidInputException("batch sizes must be >= 1, got " + batches);
      }
      if (seq < 1 || warmup < 0 || iterations < 1 || rounds < 1 || vocabulary < 0) {
        throw new io.kiln.InvalidInputException(
            "need seq >= 1, warmup >= 0, iterations >= 1, rounds >= 1 and vocabulary >= 0");
      }
      batches = List.copyOf(batches);
    }
  }

  private ModelBenchmark() {}

  /**
   * Runs the plan. {@code peer} may be null to measure Kiln alone; {@code progress} receives the
   * progress bar.
   */
  public static BenchReport run(
      Session session, RawOrtPeer peer, Plan plan, BenchReport report, PrintStream progress) {
    InputFactory inputs =
        new InputFactory(session.inputs(), session.indexRanges(), plan.vocabulary(), plan.seed());
    int perRound = Math.max(1, (plan.iterations() + plan.rounds() - 1) / plan.rounds());
    Duration roundCap = plan.maxTimePerBatch().dividedBy(plan.rounds());
    ProgressBar bar = new ProgressBar(progress, (long) plan.batches().size() * plan.rounds());
    for (int batch : plan.batches()) {
      Map<String, Tensor> feed = inputs.make(batch, plan.seq());
      try {
        report.add(measure(session, peer, plan, feed, batch, perRound, roundCap, bar));
      } finally {
        feed.values().forEach(Tensor::close);
      }
    }
    return report;
  }

  private static BatchRow measure(
      Session session,
      RawOrtPeer peer,
      Plan plan,
      Map<String, Tensor> feed,
      int batch,
      int perRound,
      Duration roundCap,
      ProgressBar bar) {
    double maxAbsDiff = Double.NaN;
    if (peer != null) {
      peer.prepare(feed);
      maxAbsDiff = maxAbsDiff(session, peer, feed);
      for (int i = 0; i < plan.warmup(); i++) {
        peer.run();
      }
    }
    session.benchmark(feed, plan.warmup(), 1, Duration.ZERO);
    ProcessMonitor kilnCpu = new ProcessMonitor();
    ProcessMonitor peerCpu = new ProcessMonitor();
    long[] kilnAll = new long[0];
    long[] peerAll = new long[0];
    double[] ratios = new double[plan.rounds()];
    for (int round = 0; round < plan.rounds(); round++) {
      long[] k;
      long[] p = null;
      // Alternate which engine goes first so neither always runs on a warmer machine.
      if (peer != null && round % 2 == 1) {
        p = timePeer(peer, perRound, roundCap, peerCpu);
      }
      kilnCpu.start();
      k = session.benchmark(feed, 0, perRound, roundCap).latenciesNanos();
      kilnCpu.stop();
      if (peer != null && round % 2 == 0) {
        p = timePeer(peer, perRound, roundCap, peerCpu);
      }
      kilnAll = concat(kilnAll, k);
      if (p != null) {
        peerAll = concat(peerAll, p);
        ratios[round] = median(k) / median(p);
      }
      bar.step("batch " + batch + ", round " + (round + 1) + "/" + plan.rounds());
    }
    double rss = ProcessMonitor.residentMiB();
    Measurement kiln =
        new Measurement(
            "kiln " + session.backendName(),
            new BenchmarkResult(batch, kilnAll),
            kilnCpu.cpuPercent(),
            rss);
    if (peer == null) {
      return new BatchRow(kiln, null, Double.NaN, new double[0], Double.NaN);
    }
    Measurement raw =
        new Measurement(
            "onnxruntime (Java API)",
            new BenchmarkResult(batch, peerAll),
            peerCpu.cpuPercent(),
            rss);
    return new BatchRow(kiln, raw, median(ratios), ratios, maxAbsDiff);
  }

  private static long[] timePeer(RawOrtPeer peer, int runs, Duration cap, ProcessMonitor cpu) {
    cpu.start();
    long[] samples = Stopwatch.sample(peer::run, runs, cap);
    cpu.stop();
    return samples;
  }

  private static double maxAbsDiff(Session session, RawOrtPeer peer, Map<String, Tensor> feed) {
    try (Session.Result r = session.infer(feed)) {
      float[] mine = r.first().toFloatArray();
      float[] theirs = peer.firstOutput();
      double max = 0;
      for (int i = 0; i < Math.min(mine.length, theirs.length); i++) {
        max = Math.max(max, Math.abs(mine[i] - theirs[i]));
      }
      return mine.length == theirs.length ? max : Double.POSITIVE_INFINITY;
    }
  }

  static double median(long[] values) {
    long[] s = values.clone();
    Arrays.sort(s);
    int n = s.length;
    return n % 2 == 1 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2.0;
  }

  public static double median(double[] values) {
    double[] s = values.clone();
    Arrays.sort(s);
    int n = s.length;
    return n % 2 == 1 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2.0;
  }

  static double median(List<Double> values) {
    return median(values.stream().mapToDouble(Double::doubleValue).toArray());
  }

  private static long[] concat(long[] a, long[] b) {
    long[] out = Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, out, a.length, b.length);
    return out;
  }
}
