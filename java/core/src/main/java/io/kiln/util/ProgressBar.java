package io.kiln.util;

import java.io.PrintStream;

/**
 * A one-line progress display on a stream (stderr), redrawn in place: a bar with the share done
 * when the total is known, elapsed time and a label otherwise.
 */
public final class ProgressBar {
  private static final int WIDTH = 30;
  private final PrintStream out;
  private final long total;
  private final long startNanos = System.nanoTime();
  private long done;
  private int lastPercent = -1;

  /** A bar for {@code total} steps; the line ends after the last one. */
  public ProgressBar(PrintStream out, long total) {
    this.out = out;
    this.total = Math.max(1, total);
  }

  private ProgressBar(PrintStream out) {
    this.out = out;
    this.total = 0;
  }

  /** A display for work of unknown length: each {@link #show} redraws the label. */
  public static ProgressBar unbounded(PrintStream out) {
    return new ProgressBar(out);
  }

  /** One step done; redraws when the percentage changes. */
  public synchronized void step(String label) {
    if (total == 0) {
      throw new IllegalStateException("an unbounded progress display has no steps");
    }
    done = Math.min(total, done + 1);
    int percent = (int) (100 * done / total);
    if (percent == lastPercent && done < total) {
      return;
    }
    lastPercent = percent;
    int filled = (int) (WIDTH * done / total);
    out.printf(
        "\r[%s%s] %3d%%  %5.1fs  %-40s",
        "#".repeat(filled), " ".repeat(WIDTH - filled), percent, seconds(), label);
    if (done == total) {
      out.println();
    }
    out.flush();
  }

  /** Redraws the line with {@code label}; the caller ends the line when the work is over. */
  public synchronized void show(String label) {
    out.printf("\r%5.1fs  %s", seconds(), label);
    out.flush();
  }

  private double seconds() {
    return (System.nanoTime() - startNanos) / 1e9;
  }
}
