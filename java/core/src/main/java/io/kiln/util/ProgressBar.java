package io.kiln.util;

import java.io.PrintStream;

/**
 * Progress of long work on a stream (stderr). On a terminal, one line redrawn in place: a bar with
 * the share done when the total is known, elapsed time and a label otherwise. Elsewhere (a log
 * file, CI), a plain line every few seconds and one at the end, never a stream of carriage returns.
 */
public final class ProgressBar {
  private static final int WIDTH = 30;

  /** How often a non-terminal stream gets a line. */
  static final long LINE_INTERVAL_NANOS = 5_000_000_000L;

  private final PrintStream out;
  private final long total;
  private final boolean interactive;
  private final long startNanos = System.nanoTime();
  private long done;
  private int lastPercent = -1;
  private long lastLineNanos;
  private String pending; // the last label a non-terminal stream has not been shown

  /** A bar for {@code total} steps on {@code out}; the line ends after the last one. */
  public ProgressBar(PrintStream out, long total) {
    this(out, total, isTerminal());
  }

  ProgressBar(PrintStream out, long total, boolean interactive) {
    this.out = out;
    this.total = total;
    this.interactive = interactive;
    this.lastLineNanos = startNanos;
  }

  /** A display for work of unknown length: each {@link #show} updates the label. */
  public static ProgressBar unbounded(PrintStream out) {
    return new ProgressBar(out, 0, isTerminal());
  }

  static ProgressBar unbounded(PrintStream out, boolean interactive) {
    return new ProgressBar(out, 0, interactive);
  }

  /**
   * Whether progress may redraw in place: a console is attached and the terminal is not dumb. The
   * JVM cannot ask about stderr alone, so a redirected stdin or stdout also counts as no terminal.
   */
  public static boolean isTerminal() {
    return System.console() != null && !"dumb".equals(System.getenv("TERM"));
  }

  /** One step done; redraws when the percentage changes. */
  public synchronized void step(String label) {
    if (total <= 0) {
      throw new IllegalStateException("an unbounded progress display has no steps");
    }
    done = Math.min(total, done + 1);
    int percent = (int) (100 * done / total);
    if (percent == lastPercent && done < total) {
      return;
    }
    lastPercent = percent;
    if (interactive) {
      int filled = (int) (WIDTH * done / total);
      out.printf(
          "\r[%s%s] %3d%%  %5.1fs  %-40s",
          "#".repeat(filled), " ".repeat(WIDTH - filled), percent, seconds(), label);
      if (done == total) {
        out.println();
      }
      out.flush();
    } else {
      line(String.format("%3d%%  %s", percent, label), done == total);
    }
  }

  /** Updates the label; the caller ends the line (or calls {@link #finish}) when the work ends. */
  public synchronized void show(String label) {
    if (interactive) {
      out.printf("\r%5.1fs  %s", seconds(), label);
      out.flush();
    } else {
      line(label, false);
    }
  }

  /** Ends the display: the terminal's line, or the last label not yet written as a line. */
  public synchronized void finish() {
    if (interactive) {
      out.println();
    } else if (pending != null) {
      line(pending, true);
    }
    out.flush();
  }

  private void line(String label, boolean last) {
    long now = System.nanoTime();
    if (!last && now - lastLineNanos < LINE_INTERVAL_NANOS) {
      pending = label;
      return;
    }
    lastLineNanos = now;
    pending = null;
    out.printf("%5.1fs  %s%n", seconds(), label);
    out.flush();
  }

  private double seconds() {
    return (System.nanoTime() - startNanos) / 1e9;
  }
}
