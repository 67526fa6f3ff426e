package io.kiln.embedding;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;

/**
 * Lays out a model that a langchain4j jar carries as resources as a sentence-transformers
 * directory, writing the module files from what the model is.
 */
public final class SentenceTransformersLayout {
  private SentenceTransformersLayout() {}

  /**
   * @param onnxResource the jar's ONNX file
   * @param tokenizerResource the jar's tokenizer.json
   * @param onnxSubdir whether the ONNX file goes to onnx/model.onnx (else model.onnx)
   * @param poolingFlag the Pooling config key that is true, or null for no pooling files at all
   * @param normalize whether modules.json lists a Normalize module
   */
  public static Path write(
      Path dir,
      String onnxResource,
      String tokenizerResource,
      boolean onnxSubdir,
      String poolingFlag,
      boolean normalize) {
    try {
      Files.createDirectories(dir);
      copy(
          onnxResource,
          onnxSubdir ? dir.resolve("onnx").resolve("model.onnx") : dir.resolve("model.onnx"));
      copy(tokenizerResource, dir.resolve("tokenizer.json"));
      Files.writeString(
          dir.resolve("config.json"),
          "{\"model_type\": \"bert\", \"max_position_embeddings\": 512}");
      if (poolingFlag != null) {
        Files.writeString(
            dir.resolve("modules.json"),
            "[{\"idx\": 0, \"name\": \"0\", \"path\": \"\", \"type\":"
                + " \"sentence_transformers.models.Transformer\"},"
                + " {\"idx\": 1, \"name\": \"1\", \"path\": \"1_Pooling\", \"type\":"
                + " \"sentence_transformers.models.Pooling\"}"
                + (normalize
                    ? ", {\"idx\": 2, \"name\": \"2\", \"path\": \"2_Normalize\", \"type\":"
                        + " \"sentence_transformers.models.Normalize\"}"
                    : "")
                + "]");
        Files.createDirectories(dir.resolve("1_Pooling"));
        StringBuilder pooling = new StringBuilder("{\"word_embedding_dimension\": 384");
        for (String flag :
            new String[] {
              "pooling_mode_cls_token",
              "pooling_mode_mean_tokens",
              "pooling_mode_max_tokens",
              "pooling_mode_mean_sqrt_len_tokens",
              "pooling_mode_weightedmean_tokens",
              "pooling_mode_lasttoken"
            }) {
          pooling.append(", \"").append(flag).append("\": ").append(flag.equals(poolingFlag));
        }
        Files.writeString(dir.resolve("1_Pooling").resolve("config.json"), pooling + "}");
      }
      return dir;
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private static void copy(String resource, Path to) throws IOException {
    Files.createDirectories(to.getParent());
    try (InputStream in = SentenceTransformersLayout.class.getResourceAsStream(resource)) {
      if (in == null) {
        throw new IllegalStateException("test resource not on the classpath: " + resource);
      }
      Files.copy(in, to, StandardCopyOption.REPLACE_EXISTING);
    }
  }
}
