package io.kiln.precision;

import io.kiln.Tensor;
import io.kiln.model.onnx.OnnxModel;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * How closely a converted graph follows the float32 original on held-out inputs, per output: cosine
 * similarity, relative L2 error and max abs error over all elements, and top-1 agreement for
 * outputs named like logits (argmax over the last axis).
 */
public final class AccuracyReport {
  /** One output's agreement; {@code top1} is NaN when the output is not logits. */
  public record OutputAccuracy(
      String name, double cosine, double relativeL2, double maxAbsError, double top1) {}

  private final List<OutputAccuracy> outputs;
  private final int batches;

  private AccuracyReport(List<OutputAccuracy> outputs, int batches) {
    this.outputs = List.copyOf(outputs);
    this.batches = batches;
  }

  public List<OutputAccuracy> outputs() {
    return outputs;
  }

  public int batches() {
    return batches;
  }

  public OutputAccuracy output(String name) {
    for (OutputAccuracy o : outputs) {
      if (o.name().equals(name)) {
        return o;
      }
    }
    throw new IllegalArgumentException("no output " + name);
  }

  private static final class Sums {
    double dot;
    double refSq;
    double candSq;
    double diffSq;
    double maxAbs;
    long rows;
    long agree;
  }

  /** Runs both graphs on every held-out batch and accumulates the metrics. */
  public static AccuracyReport compare(
      OnnxModel reference, OnnxModel candidate, CalibrationData heldOut, int threads) {
    Map<String, Sums> sums = new LinkedHashMap<>();
    int batches = 0;
    try (OrtRunner ref = new OrtRunner(reference, threads);
        OrtRunner cand = new OrtRunner(candidate, threads)) {
      Iterator<Map<String, Tensor>> it = heldOut.batches();
      while (it.hasNext()) {
        Map<String, Tensor> feed = it.next();
        try {
          Map<String, OrtRunner.Output> a = ref.run(feed);
          Map<String, OrtRunner.Output> b = cand.run(feed);
          for (Map.Entry<String, OrtRunner.Output> e : a.entrySet()) {
            OrtRunner.Output y = b.get(e.getKey());
            if (y != null) {
              accumulate(
                  sums.computeIfAbsent(e.getKey(), k -> new Sums()), e.getKey(), e.getValue(), y);
            }
          }
        } finally {
          feed.values().forEach(Tensor::close);
        }
        batches++;
      }
    }
    if (batches == 0) {
      throw new io.kiln.InvalidInputException("held-out set is empty: " + heldOut.description());
    }
    List<OutputAccuracy> out = new ArrayList<>();
    sums.forEach(
        (name, s) ->
            out.add(
                new OutputAccuracy(
                    name,
                    s.dot / Math.sqrt(Math.max(s.refSq * s.candSq, Double.MIN_NORMAL)),
                    Math.sqrt(s.diffSq / Math.max(s.refSq, Double.MIN_NORMAL)),
                    s.maxAbs,
                    s.rows == 0 ? Double.NaN : (double) s.agree / s.rows)));
    return new AccuracyReport(out, batches);
  }

  private static void accumulate(Sums s, String name, OrtRunner.Output a, OrtRunner.Output b) {
    float[] x = a.data();
    float[] y = b.data();
    int n = Math.min(x.length, y.length);
    for (int i = 0; i < n; i++) {
      double d = (double) x[i] - y[i];
      s.dot += (double) x[i] * y[i];
      s.refSq += (double) x[i] * x[i];
      s.candSq += (double) y[i] * y[i];
      s.diffSq += d * d;
      s.maxAbs = Math.max(s.maxAbs, Math.abs(d));
    }
    long[] shape = a.shape();
    if (isLogits(name) && shape.length >= 1 && shape[shape.length - 1] > 1) {
      int classes = (int) shape[shape.length - 1];
      for (int r = 0; r + classes <= n; r += classes) {
        s.rows++;
        if (argmax(x, r, classes) == argmax(y, r, classes)) {
          s.agree++;
        }
      }
    }
  }

  static boolean isLogits(String name) {
    return name.toLowerCase(Locale.ROOT).contains("logit");
  }

  private static int argmax(float[] v, int from, int n) {
    int best = 0;
    for (int i = 1; i < n; i++) {
      if (v[from + i] > v[from + best]) {
        best = i;
      }
    }
    return best;
  }

  /** A fixed-width table, one row per output. */
  public String toTable() {
    StringBuilder sb = new StringBuilder();
    sb.append(
        String.format(
            Locale.ROOT,
            "%-32s %10s %12s %12s %8s%n",
            "output",
            "cosine",
            "rel L2 err",
            "max abs err",
            "top-1"));
    for (OutputAccuracy o : outputs) {
      sb.append(
          String.format(
              Locale.ROOT,
              "%-32s %10.6f %12.3e %12.3e %8s%n",
              o.name(),
              o.cosine(),
              o.relativeL2(),
              o.maxAbsError(),
              Double.isNaN(o.top1()) ? "-" : String.format(Locale.ROOT, "%.4f", o.top1())));
    }
    sb.append("(").append(batches).append(" held-out batches)\n");
    return sb.toString();
  }
}
