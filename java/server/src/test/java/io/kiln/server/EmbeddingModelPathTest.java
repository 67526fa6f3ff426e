package io.kiln.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import io.kiln.embedding.DefaultEmbeddingModel;
import io.kiln.embedding.TextEmbedder;
import java.io.IOException;
import java.io.InputStream;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.function.UnaryOperator;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code --embedding-model PATH}: an encoder ONNX with its tokenizer.json beside it. */
class EmbeddingModelPathTest {
  @TempDir Path dir;

  private Path extract(String resource, String name) throws IOException {
    String r = resource.startsWith("/") ? resource.substring(1) : resource;
    Path file = dir.resolve("minilm-copy").resolve(name);
    Files.createDirectories(file.getParent());
    try (InputStream in = getClass().getClassLoader().getResourceAsStream(r)) {
      Files.copy(in, file);
    }
    return file;
  }

  @Test
  void anOnnxPathServesThatModelUnderItsDirectoryName() throws Exception {
    DefaultEmbeddingModel minilm = DefaultEmbeddingModel.get();
    Path onnx = extract(minilm.modelResource(), "model.onnx");
    extract(minilm.tokenizerResource(), "tokenizer.json");
    try (KilnServer server =
            KilnServer.start(
                TestServers.options(TestServers.chatModel()).withEmbeddingModel(onnx.toString()));
        TextEmbedder local = TextEmbedder.defaultModel(UnaryOperator.identity())) {
      HttpResponse<String> response =
          TestServers.post(
              server,
              "/v1/embeddings",
              "{\"model\":\"minilm-copy\",\"input\":\"served from a path\"}",
              null);
      assertEquals(200, response.statusCode(), response.body());
      JsonNode vector = TestServers.json(response.body()).at("/data/0/embedding");
      float[] expected = local.embed(List.of("served from a path"))[0];
      assertEquals(expected.length, vector.size());
      double dot = 0;
      for (int i = 0; i < expected.length; i++) {
        dot += expected[i] * vector.get(i).asDouble();
      }
      assertTrue(dot >= 0.9999, "cosine " + dot);
      assertEquals(
          404,
          TestServers.post(server, "/v1/embeddings", "{\"model\":\"other\",\"input\":\"x\"}", null)
              .statusCode());
    }
  }
}
