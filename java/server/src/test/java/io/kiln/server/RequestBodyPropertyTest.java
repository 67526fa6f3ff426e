package io.kiln.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.net.http.HttpResponse;
import java.util.List;
import java.util.Set;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.lifecycle.AfterContainer;
import net.jqwik.api.lifecycle.BeforeContainer;

/**
 * Random request bodies, valid ones mutated field by field, never make the server fail: every
 * answer is a success or a client error with OpenAI's error body, and the server keeps serving.
 */
class RequestBodyPropertyTest {
  private static final Set<Integer> CLIENT_ERRORS = Set.of(400, 404, 413, 429);
  private static final List<String> FIELDS =
      List.of(
          "model",
          "prompt",
          "messages",
          "max_tokens",
          "max_completion_tokens",
          "temperature",
          "top_p",
          "top_k",
          "seed",
          "stop",
          "n",
          "stream",
          "stream_options",
          "ignore_eos",
          "logprobs",
          "unknown_field");
  private static KilnServer server;

  @BeforeContainer
  static void start() {
    server = TestServers.start(o -> o.withMaxModelLen(64).withMaxBodyBytes(8192));
  }

  @AfterContainer
  static void stop() {
    if (server != null) {
      server.close();
    }
  }

  @Provide
  Arbitrary<JsonNode> values() {
    return Arbitraries.oneOf(
        Arbitraries.integers()
            .between(-3, 600)
            .map(i -> TestServers.JSON.getNodeFactory().numberNode(i)),
        Arbitraries.longs().map(l -> TestServers.JSON.getNodeFactory().numberNode(l)),
        Arbitraries.doubles().map(d -> TestServers.JSON.getNodeFactory().numberNode(d)),
        Arbitraries.strings()
            .ofMaxLength(12)
            .map(s -> TestServers.JSON.getNodeFactory().textNode(s)),
        Arbitraries.of(true, false).map(b -> TestServers.JSON.getNodeFactory().booleanNode(b)),
        Arbitraries.just(TestServers.JSON.getNodeFactory().nullNode()),
        Arbitraries.integers()
            .between(-2, 700)
            .list()
            .ofMaxSize(6)
            .map(
                l -> {
                  ArrayNode a = TestServers.JSON.createArrayNode();
                  l.forEach(a::add);
                  return a;
                }),
        Arbitraries.just(TestServers.JSON.createObjectNode().put("role", "user").put("x", 1)));
  }

  @Provide
  Arbitrary<String> fields() {
    return Arbitraries.of(FIELDS);
  }

  @Provide
  Arbitrary<String> paths() {
    return Arbitraries.of("/v1/completions", "/v1/chat/completions", "/v1/embeddings");
  }

  @Property(tries = 150)
  void everyBodyGetsASuccessOrAClientError(
      @ForAll("paths") String path,
      @ForAll("fields") String first,
      @ForAll("values") JsonNode firstValue,
      @ForAll("fields") String second,
      @ForAll("values") JsonNode secondValue)
      throws Exception {
    ObjectNode body = valid(path);
    body.set(first, firstValue);
    body.set(second, secondValue);
    body.put("max_tokens", Math.min(4, body.path("max_tokens").asInt(4)));
    if (body.path("max_tokens").asInt() < 1) {
      body.remove("max_tokens");
    }
    HttpResponse<String> response = TestServers.post(server, path, body.toString(), null);
    int status = response.statusCode();
    assertTrue(status == 200 || CLIENT_ERRORS.contains(status), status + " for " + body);
    if (status != 200) {
      JsonNode error = TestServers.json(response.body()).get("error");
      assertTrue(error != null && error.path("message").isTextual(), response.body());
      assertTrue(error.has("type") && error.has("param") && error.has("code"), response.body());
    }
    assertEquals(200, TestServers.get(server, "/health").statusCode(), "the server stopped");
  }

  /** A request that the endpoint accepts, before the mutation. */
  private static ObjectNode valid(String path) {
    ObjectNode body = TestServers.JSON.createObjectNode();
    switch (path) {
      case "/v1/completions" -> body.put("model", "llama-chat").put("prompt", "hello");
      case "/v1/chat/completions" -> {
        body.put("model", "llama-chat");
        body.putArray("messages").addObject().put("role", "user").put("content", "hi");
      }
      default -> body.put("model", "all-MiniLM-L6-v2").put("input", "hello");
    }
    body.put("max_tokens", 4);
    return body;
  }
}
