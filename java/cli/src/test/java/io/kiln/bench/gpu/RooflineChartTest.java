package io.kiln.bench.gpu;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kiln.bench.ReportFiles;
import java.util.List;
import org.junit.jupiter.api.Test;

class RooflineChartTest {
  private static JsonNode roofline(double replay, double... stages) {
    ObjectNode r = ReportFiles.JSON.createObjectNode().put("graph_replay_ms", replay);
    ObjectNode s = r.putObject("stage_replay_ms");
    for (int i = 0; i < stages.length; i++) {
      s.put("stage " + i, stages[i]);
    }
    return r;
  }

  @Test
  void aSeriesPerPathWithEveryStageAndTheWholeStep() {
    var chart =
        RooflineChart.chart(
            List.of("a", "b"), List.of(roofline(1.2, 0.3, 0.5), roofline(1.1, 0.25, 0.45)));
    assertEquals(List.of("a", "b"), List.copyOf(chart.getSeriesMap().keySet()));
    var b = chart.getSeriesMap().get("b");
    assertEquals(List.of("stage 0", "stage 1", "whole step (graph replay)"), b.getXData());
    assertEquals(List.of(0.25, 0.45, 1.1), b.getYData());
  }
}
