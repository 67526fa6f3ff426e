package io.kiln.util;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import io.kiln.embedding.DefaultEmbeddingModel;
import java.io.InputStream;
import java.util.Map;
import org.junit.jupiter.api.Test;

class HfTokenizersTest {
  @Test
  void tokenizersLoadTheCpuBuildUnlessTheUserChoseAnother() throws Exception {
    assumeTrue(System.getenv("RUST_FLAVOR") == null, "RUST_FLAVOR is set in the environment");
    String resource = DefaultEmbeddingModel.get().tokenizerResource().substring(1);
    try (InputStream in = getClass().getClassLoader().getResourceAsStream(resource)) {
      assertNotNull(in, resource);
      try (HuggingFaceTokenizer tokenizer = HfTokenizers.open(in, Map.of())) {
        assertTrue(tokenizer.encode("a kiln fires clay").getIds().length > 2);
      }
    }
    // Set before DJL's native library loaded, so a GPU host never reaches for a CUDA build.
    assertEquals("cpu", System.getProperty("RUST_FLAVOR"));
  }
}
