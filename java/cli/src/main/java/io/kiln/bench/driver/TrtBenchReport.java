package io.kiln.bench.driver;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kiln.bench.Charts;
import io.kiln.bench.ReportFiles;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import org.knowm.xchart.XYChart;

/**
 * The TensorRT device bench report: merges the Kiln rows and the Python peers' rows into
 * gpu-bert-base.{md,json,png}.
 */
final class TrtBenchReport {
  private static final ObjectMapper JSON = ReportFiles.JSON;

  private TrtBenchReport() {}

  /**
   * Writes the report of WORK's results into OUTDIR. {@code measuredAt} names when the rows were
   * measured where results.json does not record it (older runs); empty otherwise.
   */
  static void write(Path work, Path outDir, String command, String measuredAt) throws IOException {
    ObjectNode root = (ObjectNode) JSON.readTree(work.resolve("results.json").toFile());
    ArrayNode rows = root.has("rows") ? (ArrayNode) root.get("rows") : root.putArray("rows");
    Path peers = work.resolve("peers.json");
    if (Files.exists(peers)) {
      JsonNode p = JSON.readTree(peers.toFile());
      p.get("rows").forEach(rows::add);
      root.set("peer_environment", p.get("environment"));
    }
    Path tests = work.resolve("gpu-tests-summary.txt");
    if (Files.exists(tests)) {
      root.put("gpu_tests", Files.readString(tests));
    }
    String written = java.time.Instant.now().toString();
    if (!measuredAt.isEmpty()) {
      root.put("date", "measured " + measuredAt + ", report written " + written);
    } else if (root.has("first_measured_at")) {
      root.put(
          "date",
          "measured "
              + root.get("first_measured_at").asText()
              + " to "
              + root.get("last_measured_at").asText());
    } else {
      root.put("date", "report written " + written + "; measurement time not recorded");
    }
    root.put("command", command);
    Map<String, Double> acceptance = acceptance(rows, root.get("builds"), root.get("accuracy"));
    ObjectNode acc = root.putObject("acceptance");
    acceptance.forEach(acc::put);
    ReportFiles.writeJson(outDir.resolve("gpu-bert-base.json"), root);
    ReportFiles.writeText(outDir.resolve("gpu-bert-base.md"), markdown(root, rows, acceptance));
    chart(rows, outDir.resolve("gpu-bert-base.png"));
    System.out.println(Files.readString(outDir.resolve("gpu-bert-base.md")));
  }

  private static String key(JsonNode r) {
    boolean graphs = r.path("graphs").asBoolean(false);
    String v = r.get("variant").asText();
    return v.startsWith("trt") ? v + (graphs ? " +graphs" : "") : v;
  }

  private static JsonNode find(ArrayNode rows, String variant, boolean graphs, int batch) {
    for (JsonNode r : rows) {
      if (r.get("variant").asText().equals(variant)
          && r.path("graphs").asBoolean(false) == graphs
          && r.get("batch").asInt() == batch) {
        return r;
      }
    }
    return null;
  }

  private static void ratio(
      Map<String, Double> out, String name, JsonNode a, JsonNode b, String field) {
    if (a != null && b != null && b.get(field).asDouble() > 0) {
      out.put(name, a.get(field).asDouble() / b.get(field).asDouble());
    }
  }

  static Map<String, Double> acceptance(ArrayNode rows, JsonNode builds, JsonNode accuracy) {
    Map<String, Double> out = new LinkedHashMap<>();
    JsonNode fp16g8 = find(rows, "trt-fp16", true, 8);
    ratio(
        out,
        "b8 FP16+graphs / torch CUDA graph FP16 (items/s, host to host)",
        fp16g8,
        find(rows, "torch-cudagraph-fp16", true, 8),
        "items_per_s");
    ratio(
        out,
        "b8 FP16+graphs / torch CUDA graph FP16 (device only)",
        fp16g8,
        find(rows, "torch-cudagraph-fp16", true, 8),
        "device_only_items_per_s");
    ratio(
        out,
        "b8 FP16+graphs / torch eager FP16 (items/s, host to host)",
        fp16g8,
        find(rows, "torch-eager-fp16", false, 8),
        "items_per_s");
    ratio(
        out,
        "b8 FP16+graphs / torch eager FP16 (device only)",
        fp16g8,
        find(rows, "torch-eager-fp16", false, 8),
        "device_only_items_per_s");
    JsonNode fp16typed8 = find(rows, "trt-fp16-typed", true, 8);
    ratio(
        out,
        "b8 FP16 strongly typed+graphs / torch CUDA graph FP16 (items/s)",
        fp16typed8,
        find(rows, "torch-cudagraph-fp16", true, 8),
        "items_per_s");
    JsonNode fp16g32 = find(rows, "trt-fp16", true, 32);
    // Every INT8 variant of the run; the precision-graph table says what each placement is.
    Set<String> int8 = new LinkedHashSet<>();
    for (JsonNode r : rows) {
      if (r.get("variant").asText().startsWith("trt-int8")) {
        int8.add(r.get("variant").asText());
      }
    }
    Set<String> notFinite = new LinkedHashSet<>();
    if (accuracy != null) {
      for (JsonNode a : accuracy) {
        if (!Double.isFinite(a.path("rel_err_vs_torch_fp32_b8").asDouble(Double.NaN))) {
          notFinite.add(a.get("variant").asText());
        }
      }
    }
    for (String variant : int8) {
      JsonNode row = find(rows, variant, true, 32);
      // A fast engine whose output is NaN is no result; its ratio stays visible but says so.
      String name = notFinite.contains(variant) ? variant + " (output not finite)" : variant;
      ratio(out, "b32 " + name + " +graphs / FP16 +graphs (items/s)", row, fp16g32, "items_per_s");
      ratio(
          out,
          "b32 " + name + " +graphs / FP16 +graphs (device only)",
          row,
          fp16g32,
          "device_only_items_per_s");
    }
    if (builds != null) {
      for (JsonNode b : builds) {
        if (b.has("speedup")) {
          out.put("FP16 build: first / with timing cache", b.get("speedup").asDouble());
        }
      }
    }
    return out;
  }

  private static String markdown(ObjectNode root, ArrayNode rows, Map<String, Double> acceptance) {
    StringBuilder md = new StringBuilder();
    md.append(
        "# TensorRT on a BERT-base-shaped encoder (12 layers, hidden 768, 12 heads, random weights), seq 128\n\n");
    md.append(
        String.format(
            "Device: %s (sm %s), driver %s, CUDA runtime %s, TensorRT %s. Date: %s.%n%n",
            root.path("device").asText(),
            root.path("compute_capability").asText(),
            root.path("driver").asText(),
            root.path("cuda_runtime").asText(),
            root.path("tensorrt").asText(),
            root.path("date").asText()));
    if (root.has("peer_environment")) {
      md.append("Peers: ").append(root.get("peer_environment").toString()).append("\n\n");
    }
    md.append("Device command: `").append(root.path("command").asText()).append("`\n\n");
    md.append(
        "Host to host = one request: inputs from host memory, outputs back in host memory (Kiln: `TrtEngine.run`;"
            + " PyTorch: pinned copies around the model call). Device only = the model alone, back to back on one stream."
            + " Kiln engines have one static optimization profile per batch (min = opt = max).\n\n");
    List<String> order = new ArrayList<>();
    TreeSet<Integer> batches = new TreeSet<>();
    for (JsonNode r : rows) {
      if (!order.contains(key(r))) {
        order.add(key(r));
      }
      batches.add(r.get("batch").asInt());
    }
    table(md, "Mean latency, host to host (µs)", rows, order, batches, "mean_us", "%.0f");
    table(md, "Throughput, host to host (items/s)", rows, order, batches, "items_per_s", "%.0f");
    table(md, "p50 / p99 latency, host to host (µs)", rows, order, batches, null, null);
    table(md, "Device only: time per batch (µs)", rows, order, batches, "device_only_us", "%.0f");
    table(
        md,
        "GPU utilization during the host-to-host loop (NVML, %)",
        rows,
        order,
        batches,
        "gpu_util",
        "%.0f");
    table(
        md,
        "Device memory in use on the GPU (NVML, MiB, peak during the loop)",
        rows,
        order,
        batches,
        "mem_mib",
        "%.0f");
    if (root.has("builds")) {
      md.append(
          "## Engine builds (`kiln build`, 4 static profiles)\n\n| variant | first build (s) | with timing cache (s) |\n|---|---|---|\n");
      for (JsonNode b : root.get("builds")) {
        md.append(
            String.format(
                Locale.ROOT,
                "| %s | %.1f | %s |%n",
                b.get("variant").asText(),
                b.get("first_build_s").asDouble(),
                b.has("cached_build_s")
                    ? String.format(Locale.ROOT, "%.1f", b.get("cached_build_s").asDouble())
                    : "–"));
      }
      md.append('\n');
    }
    if (root.has("quantize")) {
      md.append(
          "## Precision graphs (`kiln quantize` of the FP32 export; strongly typed INT8 builds take"
              + " the `--float16` form)\n\n| graph | command | seconds on the"
              + " device's CPU |\n|---|---|---:|\n");
      for (JsonNode q : root.get("quantize")) {
        md.append(
            String.format(
                Locale.ROOT,
                "| %s | `%s` | %.1f |%n",
                q.path("graph").asText("–"),
                q.get("command").asText(),
                q.get("seconds").asDouble()));
      }
      md.append('\n');
    }
    if (root.has("serving")) {
      md.append(
          "## Serving: concurrent callers on one engine with two execution slots (CUDA graphs)\n\n"
              + "Another mode than the single-caller tables: one request's copies overlap another's"
              + " compute. The PyTorch peer has no such mode here.\n\n"
              + "| variant | batch | callers | streams | items/s | p50 latency (µs) | p99 (µs) |\n"
              + "|---|---:|---:|---:|---:|---:|---:|\n");
      for (JsonNode r : root.get("serving")) {
        md.append(
            String.format(
                Locale.ROOT,
                "| %s | %d | %d | %d | %.0f | %.0f | %.0f |%n",
                r.get("variant").asText(),
                r.get("batch").asInt(),
                r.get("callers").asInt(),
                r.get("streams").asInt(),
                r.get("items_per_s").asDouble(),
                r.get("p50_us").asDouble(),
                r.get("p99_us").asDouble()));
      }
      md.append('\n');
    }
    if (root.has("accuracy")) {
      md.append(
          "## Accuracy: relative error vs PyTorch FP32 (fixed batch 8, valid tokens)\n\n| variant | rel err |\n|---|---|\n");
      for (JsonNode a : root.get("accuracy")) {
        md.append(
            String.format(
                Locale.ROOT,
                "| %s | %.3g |%n",
                a.get("variant").asText(),
                a.get("rel_err_vs_torch_fp32_b8").asDouble()));
      }
      if (root.has("peer_environment")
          && root.get("peer_environment").has("torch_fp16_rel_err_vs_fp32")) {
        md.append(
            String.format(
                Locale.ROOT,
                "| torch FP16 (peer) | %.3g |%n",
                root.get("peer_environment").get("torch_fp16_rel_err_vs_fp32").asDouble()));
      }
      md.append('\n');
    }
    if (root.has("failures")) {
      md.append("## Failures\n\n");
      for (JsonNode f : root.get("failures")) {
        md.append("- ")
            .append(f.get("variant").asText())
            .append(": ")
            .append(f.get("error").asText())
            .append('\n');
      }
      md.append('\n');
    }
    md.append("## Acceptance ratios (same run, same machine)\n\n| ratio | value |\n|---|---|\n");
    acceptance.forEach((k, v) -> md.append(String.format(Locale.ROOT, "| %s | %.2f× |%n", k, v)));
    if (root.has("gpu_tests")) {
      md.append("\n## GPU tests\n\n```\n")
          .append(root.get("gpu_tests").asText().strip())
          .append("\n```\n");
    }
    return md.toString();
  }

  private static void table(
      StringBuilder md,
      String title,
      ArrayNode rows,
      List<String> order,
      TreeSet<Integer> batches,
      String field,
      String fmt) {
    md.append("## ").append(title).append("\n\n| implementation |");
    batches.forEach(b -> md.append(" B=").append(b).append(" |"));
    md.append("\n|---|");
    batches.forEach(b -> md.append("---|"));
    md.append('\n');
    for (String k : order) {
      md.append("| ").append(k).append(" |");
      for (int b : batches) {
        JsonNode hit = null;
        for (JsonNode r : rows) {
          if (key(r).equals(k) && r.get("batch").asInt() == b) {
            hit = r;
          }
        }
        String cell = "–";
        if (hit != null && field == null) {
          cell =
              String.format(
                  Locale.ROOT,
                  "%.0f / %.0f",
                  hit.get("p50_us").asDouble(),
                  hit.get("p99_us").asDouble());
        } else if (hit != null && hit.has(field) && hit.get(field).asDouble() >= 0) {
          cell = String.format(Locale.ROOT, fmt, hit.get(field).asDouble());
        }
        md.append(' ').append(cell).append(" |");
      }
      md.append('\n');
    }
    md.append('\n');
  }

  private static void chart(ArrayNode rows, Path png) {
    XYChart chart =
        Charts.lines(
            1100, 600, "BERT-base shape, seq 128: items/s, host to host", "batch", "items/s");
    chart.getStyler().setYAxisLogarithmic(true);
    chart.getStyler().setXAxisLogarithmic(true);
    chart.getStyler().setLegendPosition(org.knowm.xchart.style.Styler.LegendPosition.OutsideE);
    Map<String, Map<Integer, Double>> series = new LinkedHashMap<>();
    for (JsonNode r : rows) {
      double v = r.get("items_per_s").asDouble();
      if (v > 0) {
        series
            .computeIfAbsent(key(r), k -> new java.util.TreeMap<>())
            .put(r.get("batch").asInt(), v);
      }
    }
    for (var e : series.entrySet()) {
      double[] xs = e.getValue().keySet().stream().mapToDouble(Integer::doubleValue).toArray();
      double[] ys = e.getValue().values().stream().mapToDouble(Double::doubleValue).toArray();
      Charts.addLine(chart, e.getKey(), xs, ys);
    }
    Charts.savePng(png, List.of(chart));
  }
}
