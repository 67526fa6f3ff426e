package io.kiln.util;

import io.kiln.ClosedException;
import java.time.Duration;

/**
 * Lets calls into native code in until close begins, then turns new ones away with a {@link
 * ClosedException} and lets the closer wait, bounded, for those still inside. The owner frees
 * native memory only once {@link #awaitIdle} says none is left.
 */
public final class CallGate {
  private final String name;
  private int inside;
  private boolean closing;

  /**
   * @param name what the gate guards, for messages ({@code session}, {@code engine})
   */
  public CallGate(String name) {
    this.name = name;
  }

  /** Admits one call; throws {@link ClosedException} once close has begun. */
  public synchronized void enter() {
    if (closing) {
      throw new ClosedException("the " + name + " is closed");
    }
    inside++;
  }

  public synchronized void exit() {
    if (--inside == 0) {
      notifyAll();
    }
  }

  /** Turns new calls away; true for the first caller, who then owns the close. */
  public synchronized boolean beginClose() {
    if (closing) {
      return false;
    }
    closing = true;
    return true;
  }

  public synchronized boolean closing() {
    return closing;
  }

  /** Calls inside now. */
  public synchronized int inside() {
    return inside;
  }

  /** Waits until no call is inside or {@code timeout} has passed; true when none is left. */
  public synchronized boolean awaitIdle(Duration timeout) {
    long deadline = System.nanoTime() + timeout.toNanos();
    boolean interrupted = false;
    while (inside > 0) {
      long left = deadline - System.nanoTime();
      if (left <= 0) {
        break;
      }
      try {
        wait(Math.max(1, left / 1_000_000));
      } catch (InterruptedException e) {
        interrupted = true;
      }
    }
    if (interrupted) {
      Thread.currentThread().interrupt();
    }
    return inside == 0;
  }

  /** The exception for a call that close cut short. */
  public ClosedException cutShort() {
    return new ClosedException("the " + name + " was closed while this call ran");
  }
}
