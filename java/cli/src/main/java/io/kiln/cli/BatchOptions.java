package io.kiln.cli;

import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import picocli.CommandLine;
import picocli.CommandLine.Option;

/** Where a batch job reads and writes, and on which Spark master it runs. */
final class BatchOptions {
  @Option(
      names = "--input",
      required = true,
      paramLabel = "PATH",
      description = "rows to process: .jsonl (or .json), .parquet or .csv (with a header)")
  Path input;

  @Option(
      names = "--column",
      split = ",",
      paramLabel = "C",
      description = "the input column (run: one per model input, comma separated)")
  List<String> columns;

  @Option(
      names = "--output",
      required = true,
      paramLabel = "PATH",
      description =
          "where to write every input column plus the results and an error column; the format"
              + " follows the extension as for --input, written as Spark writes (a directory of"
              + " part files)")
  Path output;

  @Option(
      names = "--master",
      defaultValue = "local[*]",
      paramLabel = "URL",
      description = "local[N] (N task slots in this JVM) or spark://HOST:PORT (default: local[*])")
  String master;

  @Option(
      names = "--partitions",
      paramLabel = "N",
      description = "split the input into N partitions first (default: as read)")
  Integer partitions;

  @Option(
      names = "--fail-fast",
      description = "fail the job at the first bad row instead of setting its error column")
  boolean failFast;

  /** The file formats, by extension. */
  enum Format {
    JSONL("json"),
    PARQUET("parquet"),
    CSV("csv");

    final String spark;

    Format(String spark) {
      this.spark = spark;
    }

    static Format of(CommandLine.Model.CommandSpec spec, String option, Path path) {
      String name = path.getFileName().toString().toLowerCase(Locale.ROOT);
      if (name.endsWith(".jsonl") || name.endsWith(".json")) {
        return JSONL;
      }
      if (name.endsWith(".parquet")) {
        return PARQUET;
      }
      if (name.endsWith(".csv")) {
        return CSV;
      }
      throw OptionRanges.usage(
          spec, option + " must end in .jsonl, .json, .parquet or .csv, got " + path);
    }
  }

  /** The one input column, or the command's default. */
  String column(CommandLine.Model.CommandSpec spec, String fallback) {
    if (columns == null || columns.isEmpty()) {
      return fallback;
    }
    if (columns.size() > 1) {
      throw OptionRanges.usage(spec, "--column takes one column here, got " + columns);
    }
    return columns.get(0);
  }

  boolean local() {
    return master.startsWith("local");
  }

  void checkRanges(CommandLine.Model.CommandSpec spec) {
    if (partitions != null) {
      OptionRanges.between(spec, "--partitions", partitions, 1, 1 << 20);
    }
    if (!local() && !master.startsWith("spark://")) {
      throw OptionRanges.usage(
          spec, "--master must be local[N] or spark://HOST:PORT, got '" + master + "'");
    }
  }
}
