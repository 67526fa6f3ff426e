package io.kiln.bench;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.style.Styler;

/**
 * The rows of an LLM serving benchmark, in process ({@code kiln bench-llm}) or over HTTP ({@code
 * kiln bench-serve}), as a table, JSON and a PNG plot. The KV columns appear where the rows know
 * the engine's KV use, the speculation columns where the engine speculates.
 */
public final class LlmBenchReport implements Report {
  private final Map<String, Object> header;
  private final List<LlmBenchRow> rows = new ArrayList<>();

  public LlmBenchReport(Map<String, Object> header) {
    this.header = new LinkedHashMap<>(header);
  }

  public void add(LlmBenchRow row) {
    rows.add(row);
  }

  public List<LlmBenchRow> rows() {
    return List.copyOf(rows);
  }

  @Override
  public String markdown() {
    StringBuilder sb = new StringBuilder();
    sb.append("# ").append(header.getOrDefault("title", "kiln bench-llm")).append("\n\n");
    for (Map.Entry<String, Object> e : header.entrySet()) {
      if (!e.getKey().equals("title")) {
        sb.append("- ").append(e.getKey()).append(": ").append(e.getValue()).append('\n');
      }
    }
    boolean withKv = rows.stream().allMatch(r -> r.kv() != null);
    boolean withSpeculation = rows.stream().allMatch(r -> r.speculation() != null);
    sb.append('\n')
        .append(
            "| concurrency | requests | output tok/s | vs first row | req/s | TTFT p50 ms"
                + " | TTFT p99 ms | ITL p50 ms | ITL p99 ms |"
                + (withKv ? " peak KV blocks | preemptions | prefix cache hits |" : "")
                + (withSpeculation ? SPECULATION_HEADER : "")
                + "\n")
        .append(
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|" + (withKv ? "---:|---:|---:|" : ""))
        .append(withSpeculation ? "---:|---:|---:|---:|---:|" : "")
        .append('\n');
    for (LlmBenchRow r : rows) {
      sb.append(
          String.format(
              java.util.Locale.ROOT,
              "| %d | %d | %.1f | %.2fx | %.2f | %.2f | %.2f | %.2f | %.2f |",
              r.concurrency(),
              r.requests(),
              r.outputTokensPerSecond(),
              r.outputTokensPerSecond() / rows.get(0).outputTokensPerSecond(),
              r.requestsPerSecond(),
              r.ttftP50Millis(),
              r.ttftP99Millis(),
              r.itlP50Millis(),
              r.itlP99Millis()));
      if (withKv) {
        LlmBenchRow.KvUse kv = r.kv();
        sb.append(
            String.format(
                java.util.Locale.ROOT,
                " %d/%d (%.0f%%) | %d | %.1f%% |",
                kv.peakKvBlocks(),
                kv.kvBlocks(),
                100 * kv.peakKvUsage(),
                kv.preemptions(),
                100 * kv.prefixHitRate()));
      }
      if (withSpeculation) {
        LlmBenchRow.Speculation spec = r.speculation();
        sb.append(
            String.format(
                java.util.Locale.ROOT,
                " %.1f | %d | %d | %.3f | %.2f |",
                r.decodeTokensPerSecond(),
                spec.proposed(),
                spec.accepted(),
                spec.acceptanceRate(),
                spec.meanAcceptedLength()));
      }
      sb.append('\n');
    }
    return sb.toString();
  }

  /**
   * Speculation makes tokens arrive in bursts, so the ITL percentiles say little; the decode rate
   * comes from the mean gap instead. The accepted length counts the model's own token too.
   */
  private static final String SPECULATION_HEADER =
      " decode tok/s per request | proposed | accepted | acceptance | mean accepted length |";

  @Override
  public void writeJson(Path file) {
    Map<String, Object> root = new LinkedHashMap<>(header);
    List<Map<String, Object>> out = new ArrayList<>();
    for (LlmBenchRow r : rows) {
      out.add(r.toJson());
    }
    root.put("rows", out);
    ReportFiles.writeJson(file, root);
  }

  @Override
  public void writeMarkdown(Path file) {
    ReportFiles.writeText(file, markdown());
  }

  /** Output tokens/s, and TTFT / ITL percentiles, against concurrency. */
  @Override
  public void writePlot(Path png) {
    double[] x = rows.stream().mapToDouble(LlmBenchRow::concurrency).toArray();
    XYChart throughput =
        chart(header.getOrDefault("title", "kiln bench-llm") + ": throughput", "output tokens/s");
    add(
        throughput,
        "output tokens/s",
        x,
        rows.stream().mapToDouble(LlmBenchRow::outputTokensPerSecond).toArray());
    XYChart latency = chart("latency", "ms");
    add(latency, "TTFT p50", x, rows.stream().mapToDouble(LlmBenchRow::ttftP50Millis).toArray());
    add(latency, "TTFT p99", x, rows.stream().mapToDouble(LlmBenchRow::ttftP99Millis).toArray());
    add(latency, "ITL p50", x, rows.stream().mapToDouble(LlmBenchRow::itlP50Millis).toArray());
    add(latency, "ITL p99", x, rows.stream().mapToDouble(LlmBenchRow::itlP99Millis).toArray());
    latency.getStyler().setYAxisLogarithmic(true);
    Charts.savePng(png, List.of(throughput, latency));
  }

  private static XYChart chart(String title, String yTitle) {
    XYChart c = Charts.lines(640, 420, title, "concurrent requests", yTitle);
    c.getStyler().setLegendPosition(Styler.LegendPosition.OutsideS);
    c.getStyler().setYAxisDecimalPattern("#,##0.#");
    return c;
  }

  private static void add(XYChart c, String name, double[] x, double[] y) {
    Charts.addLine(c, name, x, y);
  }
}
