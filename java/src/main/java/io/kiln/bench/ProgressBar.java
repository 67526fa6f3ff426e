package io.kiln.bench;

import java.io.PrintStream;

/** A one-line progress bar on stderr, redrawn in place. */
public final class ProgressBar {
  private static final int WIDTH = 30;
  private final PrintStream out;
  private final long total;
  private final long startNanos = System.nanoTime();
  private long done;
  private int lastPercent = -1;

  public ProgressBar(PrintStream out, long total) {
    this.out = out;
    this.total = Math.max(1, total);
  }

  public synchronized void step(String label) {
    done = Math.min(total, done + 1);
    int percent = (int) (100 * done / total);
    if (percent == lastPercent && done < total) {
      return;
    }
    lastPercent = percent;
    int filled = (int) (WIDTH * done / total);
    double seconds = (System.nanoTime() - startNanos) / 1e9;
    out.printf(
        "\r[%s%s] %3d%%  %5.1fs  %-40s",
        "#".repeat(filled), " ".repeat(WIDTH - filled), percent, seconds, label);
    if (done == total) {
      out.println();
    }
    out.flush();
  }
}
