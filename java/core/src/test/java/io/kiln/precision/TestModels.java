package io.kiln.precision;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Path;

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
    return io.kiln.SharedModels.require("");
  }
}
