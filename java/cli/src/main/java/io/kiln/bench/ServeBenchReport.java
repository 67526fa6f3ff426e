package io.kiln.bench;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.style.Styler;

/** The rows of {@code kiln bench-serve} as a table, JSON and a PNG plot. */
public final class ServeBenchReport {
  private final Map<String, Object> header;
  private final List<ServeBenchRow> rows = new ArrayList<>();

  public ServeBenchReport(Map<String, Object> header) {
    this.header = new LinkedHashMap<>(header);
  }

  public void add(ServeBenchRow row) {
    rows.add(row);
  }

  public String markdown() {
    StringBuilder sb = new StringBuilder();
    sb.append("# ").append(header.getOrDefault("title", "kiln bench-serve")).append("\n\n");
    header.forEach(
        (k, v) -> {
          if (!k.equals("title")) {
            sb.append("- ").append(k).append(": ").append(v).append('\n');
          }
        });
    sb.append(
            "\n| concurrency | requests | output tok/s | req/s | TTFT p50 ms | TTFT p99 ms"
                + " | ITL p50 ms | ITL p99 ms |\n")
        .append("|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (ServeBenchRow r : rows) {
      sb.append(
          String.format(
              Locale.ROOT,
              "| %d | %d | %.1f | %.2f | %.2f | %.2f | %.2f | %.2f |%n",
              r.concurrency(),
              r.requests(),
              r.outputTokensPerSecond(),
              r.requestsPerSecond(),
              r.ttftP50Millis(),
              r.ttftP99Millis(),
              r.itlP50Millis(),
              r.itlP99Millis()));
    }
    return sb.toString();
  }

  public void writeJson(Path file) {
    Map<String, Object> root = new LinkedHashMap<>(header);
    root.put("rows", rows.stream().map(ServeBenchRow::toJson).toList());
    ReportFiles.writeJson(file, root);
  }

  public void writeMarkdown(Path file) {
    ReportFiles.writeText(file, markdown());
  }

  /** Output tokens/s, and TTFT / ITL percentiles, against concurrency. */
  public void writePlot(Path png) {
    double[] x = rows.stream().mapToDouble(ServeBenchRow::concurrency).toArray();
    XYChart throughput = chart("kiln bench-serve: throughput", "output tokens/s");
    Charts.addLine(
        throughput,
        "output tokens/s",
        x,
        rows.stream().mapToDouble(ServeBenchRow::outputTokensPerSecond).toArray());
    XYChart latency = chart("latency over HTTP", "ms");
    Charts.addLine(
        latency, "TTFT p50", x, rows.stream().mapToDouble(ServeBenchRow::ttftP50Millis).toArray());
    Charts.addLine(
        latency, "TTFT p99", x, rows.stream().mapToDouble(ServeBenchRow::ttftP99Millis).toArray());
    Charts.addLine(
        latency, "ITL p50", x, rows.stream().mapToDouble(ServeBenchRow::itlP50Millis).toArray());
    Charts.addLine(
        latency, "ITL p99", x, rows.stream().mapToDouble(ServeBenchRow::itlP99Millis).toArray());
    latency.getStyler().setYAxisLogarithmic(true);
    Charts.savePng(png, List.of(throughput, latency));
  }

  private static XYChart chart(String title, String yTitle) {
    XYChart c = Charts.lines(640, 420, title, "concurrent requests", yTitle);
    c.getStyler().setLegendPosition(Styler.LegendPosition.OutsideS);
    c.getStyler().setYAxisDecimalPattern("#,##0.#");
    return c;
  }
}
