package io.kiln;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.file.Files;
import java.nio.file.Path;

/** Locates the shared test models beside the repository ({@code ../shared/models}). */
public final class SharedModels {
  private SharedModels() {}

  /** The {@code shared/models} directory, or null when this checkout has none beside it. */
  public static Path root() {
    Path p = expected();
    return Files.isDirectory(p) ? p : null;
  }

  /**
   * Where the shared models are looked for: {@code -Dkiln.shared=DIR}, else {@code shared/models}
   * beside the checkout (found from any module's folder), whether it exists or not.
   */
  public static Path expected() {
    String configured = System.getProperty("kiln.shared");
    if (configured != null) {
      return Path.of(configured, "models");
    }
    for (Path dir = Path.of("").toAbsolutePath(); dir != null; dir = dir.getParent()) {
      if (Files.isDirectory(dir.resolve(".git")) || Files.exists(dir.resolve(".ci"))) {
        return dir.resolveSibling("shared").resolve("models");
      }
    }
    return Path.of("shared", "models").toAbsolutePath();
  }

  /** A path under {@code shared/models}; skips the calling test when it is absent. */
  public static Path require(String relative) {
    Path root = root();
    assumeTrue(root != null, "skipped: ../shared/models is not beside this checkout");
    Path p = root.resolve(relative);
    assumeTrue(Files.exists(p), "skipped: " + p + " is missing");
    return p;
  }
}
