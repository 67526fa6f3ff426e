package io.kiln.util;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Path;
import java.util.Map;

/**
 * Opens Hugging Face tokenizers through DJL, always with the CPU build of its native library that
 * DJL's jar carries. On a host with an NVIDIA driver DJL would otherwise fetch a CUDA build from
 * the network at first use (and fail where there is none), though tokenizing runs on the CPU either
 * way.
 */
public final class HfTokenizers {
  private static final String FLAVOR = "RUST_FLAVOR";

  static {
    if (System.getenv(FLAVOR) == null && System.getProperty(FLAVOR) == null) {
      System.setProperty(FLAVOR, "cpu");
    }
  }

  private HfTokenizers() {}

  public static HuggingFaceTokenizer open(Path file) throws IOException {
    return HuggingFaceTokenizer.newInstance(file);
  }

  public static HuggingFaceTokenizer open(Path file, Map<String, String> options)
      throws IOException {
    return HuggingFaceTokenizer.newInstance(file, options);
  }

  public static HuggingFaceTokenizer open(InputStream in, Map<String, String> options)
      throws IOException {
    return HuggingFaceTokenizer.newInstance(in, options);
  }
}
