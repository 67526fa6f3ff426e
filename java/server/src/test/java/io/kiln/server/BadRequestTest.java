package io.kiln.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.net.http.HttpResponse;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** Each bad request gets its status and OpenAI's error body; none crashes the server. */
class BadRequestTest {
  private static final String KEY = "sk-kiln-test";
  private static final int MAX_MODEL_LEN = 64;
  private static final int MAX_BODY = 4096;
  private static KilnServer server;

  @BeforeAll
  static void start() {
    server =
        TestServers.start(
            o -> o.withApiKey(KEY).withMaxModelLen(MAX_MODEL_LEN).withMaxBodyBytes(MAX_BODY));
  }

  @AfterAll
  static void stop() {
    if (server != null) {
      server.close();
    }
  }

  private static JsonNode expectError(
      String path, String body, String key, int status, String param) throws Exception {
    HttpResponse<String> response = TestServers.post(server, path, body, key);
    assertEquals(status, response.statusCode(), response.body());
    JsonNode error = TestServers.json(response.body()).get("error");
    assertTrue(error != null && error.isObject(), response.body());
    assertTrue(error.get("message").isTextual() && !error.get("message").asText().isEmpty());
    assertTrue(error.get("type").isTextual());
    assertTrue(error.has("param") && error.has("code"), response.body());
    if (param != null) {
      assertEquals(param, error.get("param").asText(), response.body());
    }
    return error;
  }

  private static JsonNode completions(String body, String param) throws Exception {
    return expectError("/v1/completions", body, KEY, 400, param);
  }

  @Test
  void malformedJsonIs400() throws Exception {
    completions("{\"model\": \"llama-chat\", \"prompt\": ", null);
  }

  @Test
  void aBodyThatIsNotAnObjectIs400() throws Exception {
    completions("[1, 2, 3]", null);
  }

  @Test
  void aWrongTypeIs400NamingTheParameter() throws Exception {
    completions(
        "{\"model\":\"llama-chat\",\"prompt\":\"hi\",\"temperature\":\"hot\"}", "temperature");
  }

  @Test
  void anEmptyPromptIs400() throws Exception {
    completions("{\"model\":\"llama-chat\",\"prompt\":\"\"}", "prompt");
  }

  @Test
  void anEmptyTokenPromptIs400() throws Exception {
    completions("{\"model\":\"llama-chat\",\"prompt\":[]}", "prompt");
  }

  @Test
  void aTokenIdOutsideTheVocabularyIs400() throws Exception {
    completions("{\"model\":\"llama-chat\",\"prompt\":[1, 512]}", "prompt");
  }

  @Test
  void aPromptLongerThanMaxModelLenIs400() throws Exception {
    StringBuilder ids = new StringBuilder("1");
    for (int i = 1; i < MAX_MODEL_LEN + 10; i++) {
      ids.append(",").append(60 + i % 50);
    }
    completions("{\"model\":\"llama-chat\",\"prompt\":[" + ids + "]}", "prompt");
  }

  @Test
  void maxTokensBelowOneIs400() throws Exception {
    completions("{\"model\":\"llama-chat\",\"prompt\":\"hi\",\"max_tokens\":0}", "max_tokens");
  }

  @Test
  void maxTokensBeyondTheContextIs400() throws Exception {
    completions("{\"model\":\"llama-chat\",\"prompt\":\"hi\",\"max_tokens\":1000}", "max_tokens");
  }

  @Test
  void nOtherThanOneIs400() throws Exception {
    completions("{\"model\":\"llama-chat\",\"prompt\":\"hi\",\"n\":2}", "n");
  }

  @Test
  void anUnknownParameterIs400() throws Exception {
    completions("{\"model\":\"llama-chat\",\"prompt\":\"hi\",\"mirostat\":1}", "mirostat");
  }

  @Test
  void anUnimplementedParameterValueIs400() throws Exception {
    completions(
        "{\"model\":\"llama-chat\",\"prompt\":\"hi\",\"presence_penalty\":0.5}",
        "presence_penalty");
    completions("{\"model\":\"llama-chat\",\"prompt\":\"hi\",\"echo\":true}", "echo");
    expectError(
        "/v1/chat/completions",
        "{\"model\":\"llama-chat\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
            + "\"tools\":[{\"type\":\"function\"}]}",
        KEY,
        400,
        "tools");
  }

  @Test
  void aTopPOutOfRangeIs400() throws Exception {
    completions("{\"model\":\"llama-chat\",\"prompt\":\"hi\",\"top_p\":0}", "top_p");
  }

  @Test
  void streamOptionsWithoutStreamIs400() throws Exception {
    completions(
        "{\"model\":\"llama-chat\",\"prompt\":\"hi\",\"stream_options\":{\"include_usage\":true}}",
        "stream_options");
  }

  @Test
  void emptyMessagesAre400() throws Exception {
    expectError(
        "/v1/chat/completions", "{\"model\":\"llama-chat\",\"messages\":[]}", KEY, 400, "messages");
  }

  @Test
  void anUnknownRoleIs400() throws Exception {
    expectError(
        "/v1/chat/completions",
        "{\"model\":\"llama-chat\",\"messages\":[{\"role\":\"wizard\",\"content\":\"hi\"}]}",
        KEY,
        400,
        "messages");
  }

  @Test
  void anUnknownModelIs404() throws Exception {
    JsonNode error =
        expectError("/v1/completions", "{\"model\":\"gpt\",\"prompt\":\"hi\"}", KEY, 404, null);
    assertEquals("model_not_found", error.get("code").asText());
  }

  @Test
  void anUnknownPathIs404() throws Exception {
    expectError("/v1/nothing-here", "{}", KEY, 404, null);
    expectError("/elsewhere", "{}", KEY, 404, null);
  }

  @Test
  void aMissingKeyIs401() throws Exception {
    JsonNode error =
        expectError(
            "/v1/completions", "{\"model\":\"llama-chat\",\"prompt\":\"hi\"}", null, 401, null);
    assertEquals("invalid_api_key", error.get("code").asText());
  }

  @Test
  void aWrongKeyIs401() throws Exception {
    expectError(
        "/v1/completions", "{\"model\":\"llama-chat\",\"prompt\":\"hi\"}", "sk-wrong", 401, null);
  }

  @Test
  void aBodyOverTheLimitIs413() throws Exception {
    String big = "x".repeat(MAX_BODY * 2);
    expectError(
        "/v1/completions", "{\"model\":\"llama-chat\",\"prompt\":\"" + big + "\"}", KEY, 413, null);
  }

  @Test
  void theServerStillAnswersAfterBadRequests() throws Exception {
    completions("{", null);
    HttpResponse<String> ok =
        TestServers.post(
            server,
            "/v1/completions",
            "{\"model\":\"llama-chat\",\"prompt\":\"hi\",\"max_tokens\":2,\"temperature\":0}",
            KEY);
    assertEquals(200, ok.statusCode(), ok.body());
    assertEquals(200, TestServers.get(server, "/health").statusCode());
  }
}
