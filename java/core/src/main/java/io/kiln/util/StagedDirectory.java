package io.kiln.util;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Comparator;
import java.util.stream.Stream;

/**
 * A directory written whole or not at all: files go into a staging folder beside the target, which
 * is moved into place only when complete and deleted when the writing fails.
 */
public final class StagedDirectory {
  /** Writes the files of a directory. */
  @FunctionalInterface
  public interface Writer {
    void writeInto(Path directory) throws IOException;
  }

  private StagedDirectory() {}

  /**
   * Runs {@code writer} on a fresh staging folder, then moves it to {@code target} (which must not
   * exist, or be an empty directory). On any failure nothing is left behind.
   */
  public static void write(Path target, Writer writer) throws IOException {
    Path absolute = target.toAbsolutePath();
    Path staging =
        absolute.resolveSibling("." + absolute.getFileName() + ".partial-" + System.nanoTime());
    try {
      Files.createDirectories(staging);
      writer.writeInto(staging);
      Files.deleteIfExists(absolute); // an empty directory; a full one fails here
      Files.move(staging, absolute, StandardCopyOption.ATOMIC_MOVE);
    } catch (IOException | RuntimeException e) {
      deleteQuietly(staging);
      throw e;
    }
  }

  private static void deleteQuietly(Path dir) {
    if (!Files.exists(dir)) {
      return;
    }
    try (Stream<Path> files = Files.walk(dir)) {
      files.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
    } catch (IOException e) {
      // Best effort: the staging folder's name says what it is.
    }
  }
}
