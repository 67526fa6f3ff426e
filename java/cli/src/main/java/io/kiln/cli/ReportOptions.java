package io.kiln.cli;

import io.kiln.bench.MachineInfo;
import io.kiln.bench.Report;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.Map;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** The report files of the benchmark commands, and the header every report opens with. */
final class ReportOptions {
  @Option(names = "--json", paramLabel = "FILE", description = "write the report as JSON")
  Path json;

  @Option(names = "--markdown", paramLabel = "FILE", description = "write the report as Markdown")
  Path markdown;

  @Option(names = "--plot", paramLabel = "FILE.png", description = "draw throughput and latency")
  Path plot;

  @Spec(Spec.Target.MIXEE)
  CommandSpec command;

  /** Title, date and the exact command line; the caller adds its fields, then {@link #machine}. */
  Map<String, Object> header(String title) {
    Map<String, Object> header = new LinkedHashMap<>();
    header.put("title", title);
    header.put("date", Instant.now().toString());
    header.put(
        "command",
        "kiln " + String.join(" ", command.commandLine().getParseResult().originalArgs()));
    return header;
  }

  /** Prints the report's Markdown to {@code out} and writes the files asked for. */
  void write(PrintWriter out, Report report) {
    out.println(report.markdown());
    out.flush();
    if (json != null) {
      report.writeJson(json);
    }
    if (markdown != null) {
      report.writeMarkdown(markdown);
    }
    if (plot != null) {
      report.writePlot(plot);
    }
  }

  /** Ends the header with the machine the run is on. */
  static void machine(Map<String, Object> header) {
    header.put("machine", MachineInfo.describe());
  }
}
