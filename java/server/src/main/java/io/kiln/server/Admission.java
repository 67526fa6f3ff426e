package io.kiln.server;

import java.util.concurrent.atomic.AtomicInteger;

/**
 * Counts generation requests in flight and refuses one when more than {@code maxQueue} would wait
 * beyond the {@code maxRunning} the engine runs at once.
 */
final class Admission {
  private final int maxRunning;
  private final int maxQueue;
  private final AtomicInteger inFlight = new AtomicInteger();

  Admission(int maxRunning, int maxQueue) {
    this.maxRunning = maxRunning;
    this.maxQueue = maxQueue;
  }

  /** Takes a place, or throws 429. */
  void enter() {
    while (true) {
      int now = inFlight.get();
      if (now >= maxRunning + maxQueue) {
        throw ApiException.tooManyRequests(Math.max(0, now - maxRunning));
      }
      if (inFlight.compareAndSet(now, now + 1)) {
        return;
      }
    }
  }

  void leave() {
    inFlight.decrementAndGet();
  }

  int inFlight() {
    return inFlight.get();
  }
}
