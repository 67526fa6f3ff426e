package io.kiln.precision;

import java.io.PrintStream;

/** Reports calibration progress: which pass, how many batches and samples so far. */
@FunctionalInterface
public interface Progress {
  void update(String pass, int batches, long samples);

  Progress NONE = (pass, batches, samples) -> {};

  /** One carriage-returned line on a stream, such as stderr. */
  static Progress to(PrintStream out) {
    return (pass, batches, samples) ->
        out.printf("\r  calibration %-9s batch %5d  samples %7d", pass, batches, samples);
  }
}
