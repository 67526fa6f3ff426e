package io.kiln.bench;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/** The results of one benchmark run: a header describing it and one row per batch size. */
public final class BenchReport implements Report {
  private final Map<String, Object> header;
  private final List<BatchRow> rows = new ArrayList<>();
  private final String utilizationLabel;
  private final String memoryLabel;

  public BenchReport(Map<String, Object> header, String utilizationLabel, String memoryLabel) {
    this.header = new LinkedHashMap<>(header);
    this.utilizationLabel = utilizationLabel;
    this.memoryLabel = memoryLabel;
  }

  public void add(BatchRow row) {
    rows.add(row);
  }

  public List<BatchRow> rows() {
    return List.copyOf(rows);
  }

  /** The row for {@code batch}, if it was measured. */
  public java.util.Optional<BatchRow> row(int batch) {
    return rows.stream().filter(r -> r.batch() == batch).findFirst();
  }

  /** The per-batch table, as Markdown. */
  public String table() {
    StringBuilder sb = new StringBuilder();
    boolean peer = rows.stream().anyMatch(r -> r.peer() != null);
    sb.append("| batch | items/s | ")
        .append(utilizationLabel)
        .append(" | ")
        .append(memoryLabel)
        .append(" | p50 ms/item | p95 ms/item | p99 ms/item | batch p50 ms |");
    if (peer) {
      sb.append(" peer items/s | Kiln/peer time |");
    }
    sb.append('\n').append("|---:|---:|---:|---:|---:|---:|---:|---:|");
    if (peer) {
      sb.append("---:|---:|");
    }
    sb.append('\n');
    for (BatchRow r : rows) {
      Measurement k = r.kiln();
      sb.append(
          String.format(
              Locale.ROOT,
              "| %d | %.1f | %.0f | %.0f | %.3f | %.3f | %.3f | %.2f |",
              r.batch(),
              k.itemsPerSecond(),
              k.utilizationPercent(),
              k.memoryMiB(),
              k.perItemMillis(0.5),
              k.perItemMillis(0.95),
              k.perItemMillis(0.99),
              k.latencies().quantileMillis(0.5)));
      if (peer) {
        sb.append(
            r.peer() == null
                ? " - | - |"
                : String.format(
                    Locale.ROOT, " %.1f | %.3f |", r.peer().itemsPerSecond(), r.timeRatio()));
      }
      sb.append('\n');
    }
    return sb.toString();
  }

  @Override
  public String markdown() {
    StringBuilder sb =
        new StringBuilder("# ").append(header.getOrDefault("title", "Kiln benchmark"));
    sb.append("\n\n");
    for (Map.Entry<String, Object> e : header.entrySet()) {
      if (!e.getKey().equals("title")) {
        sb.append("- **").append(e.getKey()).append("**: ").append(e.getValue()).append('\n');
      }
    }
    sb.append('\n').append(table());
    return sb.toString();
  }

  public Map<String, Object> toJsonTree() {
    Map<String, Object> root = new LinkedHashMap<>(header);
    List<Map<String, Object>> list = new ArrayList<>();
    for (BatchRow r : rows) {
      Map<String, Object> m = new LinkedHashMap<>();
      m.put("batch", r.batch());
      m.put("kiln", measurement(r.kiln()));
      if (r.peer() != null) {
        m.put("peer", measurement(r.peer()));
        m.put("time_ratio_kiln_over_peer", r.timeRatio());
        m.put("round_ratios", r.roundRatios());
        m.put("max_abs_diff_vs_peer", r.maxAbsDiff());
      }
      list.add(m);
    }
    root.put("results", list);
    return root;
  }

  private Map<String, Object> measurement(Measurement m) {
    Map<String, Object> x = new LinkedHashMap<>();
    x.put("engine", m.engine());
    x.put("runs", m.latencies().runs());
    x.put("items_per_s", m.itemsPerSecond());
    x.put("batch_latency_ms", quantiles(m, 1));
    x.put("per_item_latency_ms", quantiles(m, m.batch()));
    x.put("utilization_percent", m.utilizationPercent());
    x.put("utilization_kind", utilizationLabel);
    x.put("memory_mib", m.memoryMiB());
    x.put("memory_kind", memoryLabel);
    return x;
  }

  private static Map<String, Object> quantiles(Measurement m, int divisor) {
    Map<String, Object> q = new LinkedHashMap<>();
    q.put("p50", m.latencies().quantileMillis(0.5) / divisor);
    q.put("p95", m.latencies().quantileMillis(0.95) / divisor);
    q.put("p99", m.latencies().quantileMillis(0.99) / divisor);
    q.put("mean", m.latencies().meanMillis() / divisor);
    return q;
  }

  @Override
  public void writeJson(Path file) {
    ReportFiles.writeJson(file, toJsonTree());
  }

  @Override
  public void writeMarkdown(Path file) {
    ReportFiles.writeText(file, markdown());
  }

  @Override
  public void writePlot(Path png) {
    BenchPlot.write(rows, String.valueOf(header.getOrDefault("title", "Kiln benchmark")), png);
  }
}
