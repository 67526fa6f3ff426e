package io.kiln.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.kiln.InvalidInputException;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.style.Styler;
import org.knowm.xchart.style.markers.SeriesMarkers;

/**
 * The speculation bench's plot: each speculating case's measured speedup against its acceptance
 * rate, over the modeled curve of each draft K (each proposal kept with the same probability,
 * independently of the others). {@link #main} draws it again from a report's JSON, for reports
 * written where no font could render it (a bare device machine).
 */
public final class SpecPlot {
  private static final Pattern DRAFT_CASE = Pattern.compile("draft K=(\\d+)");

  private SpecPlot() {}

  /** One speculating case as measured. */
  record Point(String name, double acceptance, double speedup) {}

  static void save(SpecCostModel costs, List<Integer> draftKs, List<Point> measured, Path png) {
    XYChart chart =
        Charts.lines(
            760, 480, "Speculative decoding: speedup vs acceptance", "acceptance rate", "speedup");
    chart.getStyler().setLegendPosition(Styler.LegendPosition.InsideNW);
    for (int k : draftKs) {
      int points = 51;
      double[] x = new double[points];
      double[] y = new double[points];
      for (int i = 0; i < points; i++) {
        double[] point = costs.draftCurvePoint(k, i / (double) (points - 1));
        x[i] = point[0];
        y[i] = point[1];
      }
      XYSeries curve = chart.addSeries("model, draft K=" + k, x, y);
      curve.setXYSeriesRenderStyle(XYSeries.XYSeriesRenderStyle.Line);
      curve.setMarker(SeriesMarkers.NONE);
    }
    for (Point p : measured) {
      XYSeries point =
          chart.addSeries(
              p.name() + " (measured)", new double[] {p.acceptance()}, new double[] {p.speedup()});
      point.setXYSeriesRenderStyle(XYSeries.XYSeriesRenderStyle.Scatter);
    }
    Charts.savePng(png, List.of(chart));
  }

  /**
   * The plot of a report's JSON ({@code call_costs} and {@code rows}, as SpecBench writes them).
   */
  static void replot(Path json, Path png) {
    JsonNode root;
    try {
      root = new ObjectMapper().readTree(json.toFile());
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read " + json, e);
    }
    JsonNode calls = root.path("call_costs");
    JsonNode rows = root.path("rows");
    if (!calls.isObject() || !rows.isArray()) {
      throw new InvalidInputException(
          json + " is not a speculation bench report: it needs call_costs and rows");
    }
    Map<String, Double> millis = new LinkedHashMap<>();
    calls.fields().forEachRemaining(call -> millis.put(call.getKey(), call.getValue().asDouble()));
    SpecCostModel costs;
    try {
      costs = SpecCostModel.fromCalls(millis);
    } catch (InvalidInputException e) {
      throw new InvalidInputException(json + ": " + e.getMessage());
    }
    List<Integer> draftKs = new ArrayList<>();
    List<Point> measured = new ArrayList<>();
    for (JsonNode row : rows) {
      String name = row.path("decoding").asText();
      Matcher draft = DRAFT_CASE.matcher(name);
      if (draft.matches()) {
        draftKs.add(Integer.parseInt(draft.group(1)));
      }
      JsonNode acceptance = row.path("acceptance_rate");
      if (acceptance.isNumber()) {
        measured.add(
            new Point(name, acceptance.asDouble(), row.path("speedup_vs_plain").asDouble()));
      }
    }
    save(costs, draftKs, measured, png);
  }

  /** {@code SpecPlot REPORT.json...}: draws REPORT.png beside each report. */
  public static void main(String[] args) {
    if (args.length == 0) {
      System.err.println("usage: SpecPlot REPORT.json...");
      System.exit(2);
    }
    for (String arg : args) {
      Path json = Path.of(arg);
      String name = json.getFileName().toString();
      String stem = name.endsWith(".json") ? name.substring(0, name.length() - 5) : name;
      Path png = json.resolveSibling(stem + ".png");
      replot(json, png);
      System.out.println("wrote " + png);
    }
  }
}
