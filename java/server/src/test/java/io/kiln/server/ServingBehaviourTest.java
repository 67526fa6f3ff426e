package io.kiln.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import io.kiln.execution.llm.SchedulerConfig;
import java.io.IOException;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Stop strings, the queue limit, chat templates that are missing or fail, metrics, shutdown. */
class ServingBehaviourTest {
  @TempDir Path dir;

  private static String completion(String extra) {
    return "{\"model\":\"llama-chat\",\"prompt\":\"Once upon a time\",\"temperature\":0,"
        + "\"ignore_eos\":true"
        + extra
        + "}";
  }

  @Test
  void aStopStringEndsTheTextBeforeItWholeAndStreamed() throws Exception {
    try (KilnServer server = TestServers.start(o -> o)) {
      JsonNode free =
          TestServers.json(
              TestServers.post(server, "/v1/completions", completion(",\"max_tokens\":40"), null)
                  .body());
      String text = free.at("/choices/0/text").asText();
      assertTrue(text.length() > 8, "too little text to pick a stop string from: " + text);
      // A stop string from the middle of the greedy text, likely spanning a token boundary.
      String stop = text.substring(text.length() / 2, text.length() / 2 + 3);
      String expected = text.substring(0, text.indexOf(stop));
      String body =
          completion(",\"max_tokens\":40,\"stop\":" + TestServers.JSON.writeValueAsString(stop));
      JsonNode stopped =
          TestServers.json(TestServers.post(server, "/v1/completions", body, null).body());
      assertEquals(expected, stopped.at("/choices/0/text").asText());
      assertEquals("stop", stopped.at("/choices/0/finish_reason").asText());

      HttpResponse<String> streamed =
          TestServers.post(
              server,
              "/v1/completions",
              body.substring(0, body.length() - 1) + ",\"stream\":true}",
              null);
      StringBuilder joined = new StringBuilder();
      String finish = null;
      for (String line : streamed.body().split("\n")) {
        if (line.startsWith("data: {")) {
          JsonNode choice = TestServers.json(line.substring(6)).at("/choices/0");
          joined.append(choice.path("text").asText());
          if (choice.path("finish_reason").isTextual()) {
            finish = choice.path("finish_reason").asText();
          }
        }
      }
      assertEquals(expected, joined.toString());
      assertEquals("stop", finish);
      assertTrue(streamed.body().endsWith("data: [DONE]\n\n"));
    }
  }

  @Test
  void moreThanMaxQueueWaitingIs429WithRetryAfter() throws Exception {
    try (KilnServer server =
        TestServers.start(
            o -> o.withScheduler(SchedulerConfig.defaults().withMaxNumSeqs(1)).withMaxQueue(0))) {
      CompletableFuture<HttpResponse<String>> running =
          TestServers.HTTP.sendAsync(
              HttpRequest.newBuilder(TestServers.uri(server, "/v1/completions"))
                  .header("Content-Type", "application/json")
                  .POST(
                      HttpRequest.BodyPublishers.ofString(
                          completion(",\"max_tokens\":1500,\"stream\":true")))
                  .build(),
              HttpResponse.BodyHandlers.ofString());
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
      while (server.engine().stats().running() == 0 && System.nanoTime() < deadline) {
        Thread.sleep(2);
      }
      HttpResponse<String> refused =
          TestServers.post(server, "/v1/completions", completion(",\"max_tokens\":2"), null);
      assertEquals(429, refused.statusCode(), refused.body());
      assertEquals("1", refused.headers().firstValue("Retry-After").orElse(null));
      assertEquals(
          "rate_limit_exceeded", TestServers.json(refused.body()).at("/error/code").asText());
      running.cancel(true);
    }
  }

  private Path chatModelWithTemplate(String templateJson) throws IOException {
    Path model = TestServers.chatModel();
    Path copy = Files.createDirectories(dir.resolve("llama-chat"));
    for (String file :
        List.of("config.json", "generation_config.json", "tokenizer.json", "model.safetensors")) {
      Files.createSymbolicLink(copy.resolve(file), model.resolve(file).toAbsolutePath());
    }
    Files.writeString(
        copy.resolve("tokenizer_config.json"),
        "{\"bos_token\": \"<|begin_of_text|>\", \"eos_token\": \"<|eot_id|>\""
            + (templateJson == null ? "" : ", \"chat_template\": " + templateJson)
            + "}");
    return copy;
  }

  private static HttpResponse<String> chat(KilnServer server) throws Exception {
    return TestServers.post(
        server,
        "/v1/chat/completions",
        "{\"model\":\"llama-chat\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
        null);
  }

  @Test
  void aModelWithoutAChatTemplateGets400ForChat() throws Exception {
    Path model = chatModelWithTemplate(null);
    try (KilnServer server = KilnServer.start(TestServers.options(model))) {
      HttpResponse<String> response = chat(server);
      assertEquals(400, response.statusCode(), response.body());
      assertTrue(response.body().contains("chat_template"), response.body());
    }
  }

  @Test
  void aTemplateThatRaisesGets400WithItsMessage() throws Exception {
    Path model =
        chatModelWithTemplate(
            "\"{% if messages[0]['role'] != 'system' %}"
                + "{{ raise_exception('the first message must be a system message') }}"
                + "{% endif %}{{ bos_token }}\"");
    try (KilnServer server = KilnServer.start(TestServers.options(model))) {
      HttpResponse<String> response = chat(server);
      assertEquals(400, response.statusCode(), response.body());
      assertTrue(
          response.body().contains("the first message must be a system message"), response.body());
      assertEquals(200, TestServers.get(server, "/health").statusCode());
    }
  }

  @Test
  void metricsAreInPrometheusTextWithVllmStyleNames() throws Exception {
    try (KilnServer server = TestServers.start(o -> o)) {
      HttpResponse<String> ok =
          TestServers.post(server, "/v1/completions", completion(",\"max_tokens\":4"), null);
      assertEquals(200, ok.statusCode(), ok.body());
      TestServers.post(server, "/v1/completions", "{", null);
      String metrics = TestServers.get(server, "/metrics").body();
      for (String name :
          List.of(
              "kiln:num_requests_running",
              "kiln:num_requests_waiting",
              "kiln:kv_cache_usage_perc",
              "kiln:num_preemptions_total",
              "kiln:prompt_tokens_total",
              "kiln:generation_tokens_total 4.0",
              "kiln:time_to_first_token_seconds_bucket",
              "kiln:inter_token_latency_seconds_bucket",
              "kiln:e2e_request_latency_seconds_count",
              "kiln:batch_size",
              "kiln:http_requests_total{endpoint=\"/v1/completions\",status=\"200\"}",
              "kiln:http_requests_total{endpoint=\"/v1/completions\",status=\"400\"}")) {
        assertTrue(metrics.contains(name), name + " missing from:\n" + metrics);
      }
    }
  }

  @Test
  void nonFiniteLogitsFinishWithReasonError() throws Exception {
    Path model = TestServers.chatModel();
    Path copy = Files.createDirectories(dir.resolve("nan-llama"));
    for (String file :
        List.of(
            "config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json")) {
      Files.copy(model.resolve(file), copy.resolve(file));
    }
    byte[] bytes = Files.readAllBytes(model.resolve("model.safetensors"));
    ByteBuffer data = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
    long header = data.getLong(0);
    for (int i = (int) (8 + header); i + 4 <= bytes.length; i += 4) {
      data.putFloat(i, Float.NaN);
    }
    Files.write(copy.resolve("model.safetensors"), bytes);
    try (KilnServer server =
        KilnServer.start(TestServers.options(copy).withServedModelName("llama-chat"))) {
      HttpResponse<String> response =
          TestServers.post(server, "/v1/completions", completion(",\"max_tokens\":4"), null);
      assertEquals(200, response.statusCode(), response.body());
      assertEquals(
          "error", TestServers.json(response.body()).at("/choices/0/finish_reason").asText());
      assertEquals(200, TestServers.get(server, "/health").statusCode());
    }
  }

  @Test
  void shutdownFinishesStreamsInFlightThenRefuses() throws Exception {
    KilnServer server = TestServers.start(o -> o.withShutdownGrace(Duration.ofSeconds(30)));
    CompletableFuture<HttpResponse<String>> stream;
    try {
      stream =
          TestServers.HTTP.sendAsync(
              HttpRequest.newBuilder(TestServers.uri(server, "/v1/completions"))
                  .header("Content-Type", "application/json")
                  .POST(
                      HttpRequest.BodyPublishers.ofString(
                          completion(",\"max_tokens\":200,\"stream\":true")))
                  .build(),
              HttpResponse.BodyHandlers.ofString());
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
      while (server.engine().stats().generatedTokens() == 0 && System.nanoTime() < deadline) {
        Thread.sleep(1);
      }
    } finally {
      server.close();
    }
    HttpResponse<String> finished = stream.get(30, TimeUnit.SECONDS);
    assertEquals(200, finished.statusCode());
    assertTrue(finished.body().contains("\"finish_reason\":\"length\""), finished.body());
    assertTrue(finished.body().endsWith("data: [DONE]\n\n"));
    boolean refused;
    try {
      refused = TestServers.get(server, "/health").statusCode() != 200;
    } catch (IOException e) {
      refused = true;
    }
    assertTrue(refused);
    assertFalse(finished.body().contains("\"error\""));
  }
}
