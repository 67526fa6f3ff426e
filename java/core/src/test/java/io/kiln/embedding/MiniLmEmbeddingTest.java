package io.kiln.embedding;

import static io.kiln.Vectors.cosine;
import static org.junit.jupiter.api.Assertions.*;

import dev.langchain4j.model.embedding.onnx.allminilml6v2.AllMiniLmL6V2EmbeddingModel;
import io.kiln.Device;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Kiln's embeddings of the embedded model equal those of langchain4j's own runtime for it. */
class MiniLmEmbeddingTest {
  static final List<String> SENTENCES =
      List.of(
          "The quick brown fox jumps over the lazy dog.",
          "Kilns fire clay at temperatures above a thousand degrees.",
          "What is the capital of Australia?",
          "I can't believe it's already November!",
          "Quantum entanglement links particles across distances.",
          "Please restart the server after updating the configuration file.",
          "She sold seashells by the seashore.",
          "GPUs accelerate matrix multiplication dramatically.",
          "The recipe calls for two cups of flour and a pinch of salt.",
          "Stock markets fell sharply on Tuesday amid inflation fears.",
          "¿Dónde está la biblioteca?",
          "Der Zug nach Berlin hat zehn Minuten Verspätung.",
          "short",
          "A",
          "The mitochondria is the powerhouse of the cell, as every student learns in biology"
              + " class, although the full story of cellular respiration is far more intricate"
              + " and involves many enzymes, membranes, and gradients working together.",
          "Error 404: page not found.",
          "def fib(n): return n if n < 2 else fib(n-1) + fib(n-2)",
          "Emojis like 🔥 and 🚀 appear in modern text.",
          "The committee postponed its decision until next quarter.",
          "Rain is expected tomorrow in the northern valleys.",
          "He played the violin beautifully at the concert.",
          "Large language models predict the next token.");

  @Test
  void runsTakeTheBackendsPreferredSizeUnlessOneIsAsked() {
    try (TextEmbedder auto = TextEmbedder.defaultModel(b -> b.device(Device.CPU).maxBatchSize(32));
        TextEmbedder capped = TextEmbedder.defaultModel(b -> b.device(Device.CPU).maxBatchSize(8));
        TextEmbedder asked =
            TextEmbedder.defaultModel(
                b -> b.device(Device.CPU).maxBatchSize(32),
                EmbeddingOptions.defaults().withBatchSize(24))) {
      // ONNX Runtime on the CPU was measured fastest in runs of 16 texts.
      assertEquals(16, auto.batchSize());
      assertEquals(8, capped.batchSize());
      assertEquals(24, asked.batchSize());
      float[][] a = auto.embed(SENTENCES);
      float[][] b = asked.embed(SENTENCES);
      for (int i = 0; i < a.length; i++) {
        assertTrue(cosine(a[i], b[i]) > 0.99999, "sentence " + i);
      }
    }
    assertThrows(
        io.kiln.InvalidInputException.class, () -> EmbeddingOptions.defaults().withBatchSize(-1));
  }

  @Test
  void embeddingsMatchLangchain4j() {
    AllMiniLmL6V2EmbeddingModel reference = new AllMiniLmL6V2EmbeddingModel();
    try (TextEmbedder kiln = TextEmbedder.defaultModel(b -> b.device(Device.CPU).maxBatchSize(8))) {
      float[][] mine = kiln.embed(SENTENCES);
      for (int i = 0; i < SENTENCES.size(); i++) {
        float[] theirs = reference.embed(SENTENCES.get(i)).content().vector();
        double cos = cosine(mine[i], theirs);
        assertTrue(cos >= 0.9999, "sentence " + i + " cosine " + cos);
      }
      // Different sentences must not collapse to the same vector.
      assertTrue(cosine(mine[0], mine[2]) < 0.9);
    }
  }
}
