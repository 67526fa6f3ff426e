package io.kiln.util;

import java.time.Duration;
import java.util.Arrays;

/** Times repeated runs of one action. */
public final class Stopwatch {
  private Stopwatch() {}

  /**
   * Runs {@code action} until {@code runs} are done or {@code cap} has passed, at least once, and
   * returns each run's time in nanoseconds.
   */
  public static long[] sample(Runnable action, int runs, Duration cap) {
    long[] samples = new long[runs];
    long deadline = System.nanoTime() + cap.toNanos();
    int done = 0;
    while (done < runs && (done == 0 || System.nanoTime() < deadline)) {
      long t0 = System.nanoTime();
      action.run();
      samples[done++] = System.nanoTime() - t0;
    }
    return Arrays.copyOf(samples, done);
  }
}
