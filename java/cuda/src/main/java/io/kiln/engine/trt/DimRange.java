package io.kiln.engine.trt;

import io.kiln.InvalidInputException;

/** Minimum, optimum and maximum of one dynamic dimension in an optimization profile. */
public record DimRange(long min, long opt, long max) {
  public DimRange {
    if (min < 1 || opt < min || max < opt) {
      throw new InvalidInputException(
          "a range needs 1 <= min <= opt <= max, got " + min + ":" + opt + ":" + max);
    }
  }

  public static DimRange fixed(long n) {
    return new DimRange(n, n, n);
  }

  /** Parses {@code MIN:OPT:MAX}, or a single number for a fixed size. */
  public static DimRange parse(String text) {
    String[] p = text.trim().split(":");
    try {
      if (p.length == 1) {
        return fixed(Long.parseLong(p[0]));
      }
      if (p.length == 3) {
        return new DimRange(Long.parseLong(p[0]), Long.parseLong(p[1]), Long.parseLong(p[2]));
      }
    } catch (NumberFormatException e) {
      // falls through to the message below
    }
    throw new InvalidInputException("expected MIN:OPT:MAX or N, got '" + text + "'");
  }

  public boolean contains(long n) {
    return n >= min && n <= max;
  }

  @Override
  public String toString() {
    return min == max ? Long.toString(min) : min + ":" + opt + ":" + max;
  }
}
