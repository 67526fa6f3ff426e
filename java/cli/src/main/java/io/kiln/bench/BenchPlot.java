package io.kiln.bench;

import java.nio.file.Path;
import java.util.List;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.style.Styler;

/** Draws throughput and per-item latency against batch size as one PNG. */
final class BenchPlot {
  private BenchPlot() {}

  /** The plot of a report's {@code rows} under {@code title}. */
  static void write(List<BatchRow> rows, String title, Path png) {
    double[] batches = rows.stream().mapToDouble(BatchRow::batch).toArray();

    XYChart throughput = chart(title + ": throughput", "items/s");
    add(throughput, "Kiln", batches, rows.stream().mapToDouble(r -> r.kiln().itemsPerSecond()));
    if (rows.stream().allMatch(r -> r.peer() != null)) {
      add(
          throughput,
          peerName(rows),
          batches,
          rows.stream().mapToDouble(r -> r.peer().itemsPerSecond()));
    }
    XYChart latency = chart("per-item latency", "ms per item");
    add(latency, "Kiln p50", batches, rows.stream().mapToDouble(r -> r.kiln().perItemMillis(0.5)));
    add(latency, "Kiln p99", batches, rows.stream().mapToDouble(r -> r.kiln().perItemMillis(0.99)));
    if (rows.stream().allMatch(r -> r.peer() != null)) {
      add(
          latency,
          peerName(rows) + " p50",
          batches,
          rows.stream().mapToDouble(r -> r.peer().perItemMillis(0.5)));
    }
    Charts.savePng(png, List.of(throughput, latency));
  }

  private static String peerName(List<BatchRow> rows) {
    return rows.get(0).peer().engine();
  }

  private static XYChart chart(String title, String yTitle) {
    XYChart c = Charts.lines(640, 420, title, "batch size", yTitle);
    c.getStyler().setLegendPosition(Styler.LegendPosition.InsideNW);
    c.getStyler().setXAxisLogarithmic(true);
    return c;
  }

  private static void add(XYChart c, String name, double[] x, java.util.stream.DoubleStream y) {
    Charts.addLine(c, name, x, y.toArray());
  }
}
