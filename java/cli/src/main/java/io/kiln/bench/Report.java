package io.kiln.bench;

import java.nio.file.Path;

/** A benchmark's report: its Markdown, and the files a command writes it to on request. */
public interface Report {
  String markdown();

  void writeJson(Path file);

  void writeMarkdown(Path file);

  void writePlot(Path png);
}
