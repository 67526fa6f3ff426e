package io.kiln.precision;

import io.kiln.util.ProgressBar;
import java.io.PrintStream;

/** Reports calibration progress: which pass, how many batches and samples so far. */
@FunctionalInterface
public interface Progress {
  void update(String pass, int batches, long samples);

  Progress NONE = (pass, batches, samples) -> {};

  /** Progress on a stream, such as stderr; the caller ends the line. */
  static Progress to(PrintStream out) {
    return to(ProgressBar.unbounded(out));
  }

  /** Progress through {@code bar}. */
  static Progress to(ProgressBar bar) {
    return (pass, batches, samples) ->
        bar.show(String.format("calibration %-9s batch %5d  samples %7d", pass, batches, samples));
  }
}
