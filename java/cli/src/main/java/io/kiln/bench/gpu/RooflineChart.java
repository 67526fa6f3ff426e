package io.kiln.bench.gpu;

import com.fasterxml.jackson.databind.JsonNode;
import io.kiln.bench.Charts;
import io.kiln.bench.ReportFiles;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.knowm.xchart.CategoryChart;
import org.knowm.xchart.CategoryChartBuilder;
import org.knowm.xchart.style.Styler;

/**
 * Draws the batch-1 stage breakdown of one or more {@code kiln bench-llm --roofline} JSON files:
 * each stage of the decode step replayed alone, one bar per launch path.
 *
 * <pre>
 * java ... io.kiln.bench.gpu.RooflineChart OUT.png LABEL=BENCH.json [LABEL=BENCH.json ...]
 * </pre>
 */
public final class RooflineChart {
  private RooflineChart() {}

  public static void main(String[] args) throws IOException {
    if (args.length < 2) {
      System.err.println("usage: RooflineChart OUT.png LABEL=BENCH.json [LABEL=BENCH.json ...]");
      System.exit(2);
    }
    List<String> labels = new ArrayList<>();
    List<JsonNode> rooflines = new ArrayList<>();
    for (int i = 1; i < args.length; i++) {
      String[] kv = args[i].split("=", 2);
      labels.add(kv[0]);
      rooflines.add(ReportFiles.JSON.readTree(Path.of(kv[1]).toFile()).path("batch1_roofline"));
    }
    Charts.savePng(Path.of(args[0]), List.of(chart(labels, rooflines)));
  }

  /** Milliseconds per stage alone, a series per launch path, the whole replay last. */
  static CategoryChart chart(List<String> labels, List<JsonNode> rooflines) {
    CategoryChart c =
        new CategoryChartBuilder()
            .width(1100)
            .height(540)
            .title("batch-1 decode step, each stage replayed alone")
            .xAxisTitle("stage")
            .yAxisTitle("ms per step")
            .build();
    c.getStyler().setLegendPosition(Styler.LegendPosition.OutsideS);
    c.getStyler().setXAxisLabelRotation(20);
    for (int i = 0; i < labels.size(); i++) {
      JsonNode r = rooflines.get(i);
      List<String> stages = new ArrayList<>();
      List<Double> ms = new ArrayList<>();
      r.path("stage_replay_ms")
          .fields()
          .forEachRemaining(
              e -> {
                stages.add(e.getKey());
                ms.add(e.getValue().asDouble());
              });
      stages.add("whole step (graph replay)");
      ms.add(r.path("graph_replay_ms").asDouble());
      c.addSeries(labels.get(i), stages, ms);
    }
    return c;
  }
}
