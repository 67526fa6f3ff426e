package io.kiln.precision;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Assumptions;

/** Models the precision tests run on. */
public final class TestModels {
  private TestModels() {}

  private static byte[] miniLm;

  /** all-MiniLM-L6-v2 (FP32) from the embeddings jar on the classpath. */
  public static synchronized byte[] miniLmBytes() {
    if (miniLm == null) {
      miniLm = resource("all-minilm-l6-v2.onnx");
    }
    return miniLm;
  }

  public static byte[] resource(String name) {
    try (InputStream in = TestModels.class.getClassLoader().getResourceAsStream(name)) {
      if (in == null) {
        throw new IllegalStateException("resource missing: " + name);
      }
      return in.readAllBytes();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** ../shared/models, or skips the test with a message when it is not there. */
  public static Path sharedModels() {
    String prop = System.getProperty("kiln.shared");
    Path shared = null;
    if (prop != null) {
      shared = Path.of(prop).resolve("models");
    } else {
      Path dir = Path.of(System.getProperty("user.dir")).toAbsolutePath();
      for (Path d = dir; d != null; d = d.getParent()) {
        Path pom = d.resolve("pom.xml");
        try {
          if (Files.isRegularFile(pom) && Files.readString(pom).contains("<module>java</module>")) {
            shared = d.getParent().resolve("shared/models");
            break;
          }
        } catch (IOException e) {
          throw new UncheckedIOException(e);
        }
      }
    }
    Assumptions.assumeTrue(
        shared != null && Files.isDirectory(shared),
        "shared models not found (../shared/models or -Dkiln.shared); skipping");
    return shared;
  }
}
