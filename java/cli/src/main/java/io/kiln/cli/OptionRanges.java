package io.kiln.cli;

import java.util.List;
import picocli.CommandLine;
import picocli.CommandLine.Model.CommandSpec;

/** Range checks of numeric options: a value out of range is a usage error (exit 2, one line). */
final class OptionRanges {
  /** More threads than this is a typo, not a machine. */
  static final int MAX_THREADS = 4096;

  private OptionRanges() {}

  static int between(CommandSpec spec, String option, int value, int min, int max) {
    if (value < min || value > max) {
      throw usage(spec, option + " must be between " + min + " and " + max + ", got " + value);
    }
    return value;
  }

  static long between(CommandSpec spec, String option, long value, long min, long max) {
    if (value < min || value > max) {
      throw usage(spec, option + " must be between " + min + " and " + max + ", got " + value);
    }
    return value;
  }

  static double between(CommandSpec spec, String option, double value, double min, double max) {
    if (!(value >= min && value <= max)) {
      throw usage(spec, option + " must be between " + min + " and " + max + ", got " + value);
    }
    return value;
  }

  static List<Integer> eachBetween(
      CommandSpec spec, String option, List<Integer> values, int min, int max) {
    if (values.isEmpty()) {
      throw usage(spec, option + " needs at least one value");
    }
    for (int v : values) {
      between(spec, option, v, min, max);
    }
    return values;
  }

  /** Threads: null (all cores) or 1 to {@link #MAX_THREADS}. */
  static Integer threads(CommandSpec spec, String option, Integer value) {
    return value == null ? null : between(spec, option, value, 1, MAX_THREADS);
  }

  static CommandLine.ParameterException usage(CommandSpec spec, String message) {
    return new CommandLine.ParameterException(spec.commandLine(), message);
  }
}
