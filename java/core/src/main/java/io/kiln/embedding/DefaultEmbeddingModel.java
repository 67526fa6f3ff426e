package io.kiln.embedding;

import io.kiln.ModelException;
import java.io.IOException;
import java.io.InputStream;
import java.util.Properties;

/**
 * The embedded default model (all-MiniLM-L6-v2), which the optional kiln-minilm jar puts on the
 * classpath and names in {@value #DESCRIPTOR}.
 *
 * @param id the model's name, as clients call it
 * @param modelResource the classpath resource of its ONNX file
 * @param tokenizerResource the classpath resource of its tokenizer.json
 */
public record DefaultEmbeddingModel(String id, String modelResource, String tokenizerResource) {
  public static final String DESCRIPTOR = "META-INF/kiln/default-embedding-model.properties";

  private static DefaultEmbeddingModel found;

  /** The embedded model; a {@link ModelException} when kiln-minilm is not on the classpath. */
  public static synchronized DefaultEmbeddingModel get() {
    if (found == null) {
      try (InputStream in =
          DefaultEmbeddingModel.class.getClassLoader().getResourceAsStream(DESCRIPTOR)) {
        if (in == null) {
          throw new ModelException(
              "no embedded default model: add io.kiln:kiln-minilm to the classpath, or give a"
                  + " model of your own");
        }
        Properties p = new Properties();
        p.load(in);
        found =
            new DefaultEmbeddingModel(
                p.getProperty("id"), p.getProperty("model"), p.getProperty("tokenizer"));
      } catch (IOException e) {
        throw new ModelException("cannot read " + DESCRIPTOR + ": " + e.getMessage(), e);
      }
    }
    return found;
  }
}
