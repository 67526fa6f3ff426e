package io.kiln.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import io.kiln.KilnException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** Writes report files (indented JSON, Markdown), creating their folders first. */
public final class ReportFiles {
  /** Indented JSON, the format of every committed report. */
  public static final ObjectMapper JSON =
      new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

  private ReportFiles() {}

  /** {@code tree} (maps, lists, values or a Jackson node) as indented JSON. */
  public static void writeJson(Path file, Object tree) {
    try {
      createParent(file);
      JSON.writeValue(file.toFile(), tree);
    } catch (IOException e) {
      throw cannotWrite(file, e);
    }
  }

  public static void writeText(Path file, String text) {
    try {
      createParent(file);
      Files.writeString(file, text);
    } catch (IOException e) {
      throw cannotWrite(file, e);
    }
  }

  static void createParent(Path file) throws IOException {
    Path parent = file.toAbsolutePath().getParent();
    if (parent != null) {
      Files.createDirectories(parent);
    }
  }

  static KilnException cannotWrite(Path file, IOException e) {
    return new KilnException("cannot write " + file + ": " + e.getMessage(), e);
  }

  /** A report's markdown line of the load averages before and after its run. */
  static String loadLine(String before, String after) {
    return "- load average (1/5/15 min) before: " + before + ", after: " + after + "\n";
  }

  /** The 1, 5 and 15 minute load averages, for a report's header; "unknown" off Linux. */
  public static String loadAverage() {
    try {
      String[] f = Files.readString(Path.of("/proc/loadavg")).trim().split("\\s+");
      return f[0] + " " + f[1] + " " + f[2];
    } catch (IOException | RuntimeException e) {
      return "unknown";
    }
  }
}
