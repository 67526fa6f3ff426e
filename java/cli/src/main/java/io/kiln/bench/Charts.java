package io.kiln.bench;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.internal.chartpart.Chart;

/** Line charts against batch size or concurrency, saved as PNG. */
public final class Charts {
  private Charts() {}

  /** A chart with markers on its lines; callers set legend position and log axes. */
  public static XYChart lines(int width, int height, String title, String xTitle, String yTitle) {
    XYChart c =
        new XYChartBuilder()
            .width(width)
            .height(height)
            .title(title)
            .xAxisTitle(xTitle)
            .yAxisTitle(yTitle)
            .build();
    c.getStyler().setMarkerSize(6);
    return c;
  }

  public static void addLine(XYChart c, String name, double[] x, double[] y) {
    XYSeries s = c.addSeries(name, x, y);
    s.setXYSeriesRenderStyle(XYSeries.XYSeriesRenderStyle.Line);
  }

  /** The charts side by side in one PNG. */
  public static void savePng(Path png, List<? extends Chart<?, ?>> charts) {
    try {
      ReportFiles.createParent(png);
      String name = png.toString();
      String base = name.endsWith(".png") ? name.substring(0, name.length() - 4) : name;
      BitmapEncoder.saveBitmap(
          List.copyOf(charts), 1, charts.size(), base, BitmapEncoder.BitmapFormat.PNG);
    } catch (IOException e) {
      throw ReportFiles.cannotWrite(png, e);
    } catch (UnsatisfiedLinkError | InternalError e) {
      // A runtime without the system's font libraries (a bare device machine) cannot draw text:
      // the tables and JSON are written already, so the plot is skipped, not the report.
      System.err.println("kiln: plot " + png + " skipped: no font support here (" + e + ")");
    }
  }
}
