package io.kiln.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kiln.Tensor;
import io.kiln.embedding.TextEmbedder;
import io.vertx.ext.web.RoutingContext;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.Set;

/** {@code POST /v1/embeddings}: one string or a list, through the embedder's session. */
final class EmbeddingsHandler {
  private static final Set<String> FIELDS =
      Set.of("model", "input", "encoding_format", "dimensions", "user");
  private static final int MAX_INPUTS = 2048;

  private final ServerState state;

  EmbeddingsHandler(ServerState state) {
    this.state = state;
  }

  void handle(RoutingContext ctx) {
    RequestFields f = RequestFields.of(ServerState.body(ctx), FIELDS);
    TextEmbedder embedder = state.model.embedder;
    String name = state.model.embeddingModelName;
    if (embedder == null) {
      throw ApiException.notFound("this server serves no embedding model", "model_not_found");
    }
    state.checkModel(f.requiredString("model"), name);
    String encoding = f.optionalString("encoding_format");
    boolean base64 = "base64".equals(encoding);
    if (encoding != null && !base64 && !encoding.equals("float")) {
      throw ApiException.badRequest(
          "'encoding_format' must be float or base64, got '" + encoding + "'", "encoding_format");
    }
    f.unsupported("dimensions");
    f.optionalString("user");
    List<String> texts = inputs(f.get("input"));
    state.embeddingsInFlight.incrementAndGet();
    ctx.vertx()
        .executeBlocking(() -> embed(embedder, texts, name, base64), false)
        .onComplete(
            done -> {
              state.embeddingsInFlight.decrementAndGet();
              if (done.succeeded()) {
                ServerState.sendJson(ctx, done.result());
              } else {
                ctx.fail(ApiErrors.of(done.cause()));
              }
            });
  }

  private static List<String> inputs(JsonNode input) {
    if (input == null) {
      throw ApiException.badRequest("'input' is required", "input");
    }
    List<String> texts = new ArrayList<>();
    if (input.isTextual()) {
      texts.add(input.asText());
    } else if (input.isArray()) {
      for (JsonNode item : input) {
        if (!item.isTextual()) {
          throw ApiException.badRequest(
              "'input' must be a string or a list of strings (token ids are not supported)",
              "input");
        }
        texts.add(item.asText());
      }
    } else {
      throw ApiException.badRequest("'input' must be a string or a list of strings", "input");
    }
    if (texts.isEmpty() || texts.size() > MAX_INPUTS) {
      throw ApiException.badRequest(
          "'input' must hold between 1 and " + MAX_INPUTS + " strings", "input");
    }
    if (texts.stream().anyMatch(String::isEmpty)) {
      throw ApiException.badRequest("'input' strings must not be empty", "input");
    }
    return texts;
  }

  private static ObjectNode embed(
      TextEmbedder embedder, List<String> texts, String model, boolean base64) {
    float[][] vectors = embedder.embed(texts);
    ObjectNode body = JsonNodeFactory.instance.objectNode();
    body.put("object", "list");
    ArrayNode data = body.putArray("data");
    for (int i = 0; i < vectors.length; i++) {
      ObjectNode item = data.addObject();
      item.put("object", "embedding");
      item.put("index", i);
      if (base64) {
        // Little-endian float32, as OpenAI's clients decode it.
        ByteBuffer bytes =
            ByteBuffer.allocate(vectors[i].length * 4).order(ByteOrder.LITTLE_ENDIAN);
        bytes.asFloatBuffer().put(vectors[i]);
        item.put("embedding", Base64.getEncoder().encodeToString(bytes.array()));
      } else {
        ArrayNode values = item.putArray("embedding");
        for (float v : vectors[i]) {
          values.add(v);
        }
      }
    }
    body.put("model", model);
    long tokens = 0;
    for (String text : texts) {
      Map<String, Tensor> encoded = embedder.encode(text);
      try {
        tokens += encoded.get("input_ids").shape()[1];
      } finally {
        encoded.values().forEach(Tensor::close);
      }
    }
    ObjectNode usage = body.putObject("usage");
    usage.put("prompt_tokens", tokens);
    usage.put("total_tokens", tokens);
    return body;
  }
}
