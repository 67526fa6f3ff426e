package io.kiln.server;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import com.fasterxml.jackson.databind.JsonNode;
import io.kiln.execution.llm.EngineStats;
import io.kiln.execution.llm.GenerationResult;
import io.kiln.execution.llm.SamplingParams;
import io.kiln.util.HfTokenizers;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.Socket;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Greedy answers over HTTP equal the engine's in-process greedy generation token for token, whole,
 * streamed, under 64 concurrent streams; a client that disconnects frees its KV blocks.
 */
class GreedyParityTest {
  private static final int NEW_TOKENS = 16;
  private static KilnServer server;

  @BeforeAll
  static void start() {
    server = TestServers.start(o -> o);
  }

  @AfterAll
  static void stop() {
    if (server != null) {
      server.close();
    }
  }

  private static int[] inProcess(int[] prompt, int newTokens) {
    GenerationResult r =
        server
            .engine()
            .generate(
                prompt,
                SamplingParams.builder()
                    .temperature(0)
                    .maxNewTokens(newTokens)
                    .ignoreEos(true)
                    .build());
    return r.newTokenIds();
  }

  private static String completionBody(int[] prompt, boolean stream) {
    StringBuilder ids = new StringBuilder();
    for (int id : prompt) {
      ids.append(ids.length() == 0 ? "" : ",").append(id);
    }
    return "{\"model\":\"llama-chat\",\"prompt\":["
        + ids
        + "],\"max_tokens\":"
        + NEW_TOKENS
        + ",\"temperature\":0,\"ignore_eos\":true,\"return_token_ids\":true,\"stream\":"
        + stream
        + "}";
  }

  /** Token ids and text of a streamed response, read from its events. */
  private static Streamed readStream(HttpResponse<String> response) throws Exception {
    assertEquals(200, response.statusCode(), response.body());
    List<Integer> ids = new ArrayList<>();
    StringBuilder text = new StringBuilder();
    String last = null;
    for (String line : response.body().split("\n")) {
      if (!line.startsWith("data: ")) {
        continue;
      }
      last = line.substring(6);
      if (last.equals("[DONE]")) {
        continue;
      }
      JsonNode chunk = TestServers.json(last);
      for (JsonNode choice : chunk.path("choices")) {
        choice.path("token_ids").forEach(id -> ids.add(id.asInt()));
        text.append(choice.path("text").asText(choice.path("delta").path("content").asText("")));
      }
    }
    assertEquals("[DONE]", last);
    return new Streamed(ids.stream().mapToInt(Integer::intValue).toArray(), text.toString());
  }

  record Streamed(int[] ids, String text) {}

  private static int[] ints(JsonNode array) {
    int[] out = new int[array.size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = array.get(i).asInt();
    }
    return out;
  }

  @Test
  void completionTokensEqualInProcessGreedyWholeAndStreamed() throws Exception {
    int[] prompt = {507, 72, 101, 108, 108, 111, 32, 119};
    int[] expected = inProcess(prompt, NEW_TOKENS);
    JsonNode whole =
        TestServers.json(
            TestServers.post(server, "/v1/completions", completionBody(prompt, false), null)
                .body());
    assertArrayEquals(expected, ints(whole.at("/choices/0/token_ids")), whole.toString());
    assertArrayEquals(prompt, ints(whole.get("prompt_token_ids")));
    Streamed streamed =
        readStream(TestServers.post(server, "/v1/completions", completionBody(prompt, true), null));
    assertArrayEquals(expected, streamed.ids());
    assertEquals(whole.at("/choices/0/text").asText(), streamed.text());
  }

  @Test
  void chatPromptIsTheRenderedTemplateWithOneBos() throws Exception {
    String rendered =
        "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|>"
            + "<|start_header_id|>assistant<|end_header_id|>\n\n";
    int[] expectedPrompt;
    try (HuggingFaceTokenizer tokenizer =
        HfTokenizers.open(
            TestServers.chatModel().resolve("tokenizer.json"), Map.of("padding", "false"))) {
      long[] ids = tokenizer.encode(rendered, false, false).getIds();
      expectedPrompt = new int[ids.length];
      for (int i = 0; i < ids.length; i++) {
        expectedPrompt[i] = (int) ids[i];
      }
    }
    assertEquals(507, expectedPrompt[0]);
    assertTrue(expectedPrompt[1] != 507);
    String body =
        "{\"model\":\"llama-chat\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi there\"}],"
            + "\"max_completion_tokens\":12,\"temperature\":0,\"ignore_eos\":true,"
            + "\"return_token_ids\":true}";
    JsonNode whole =
        TestServers.json(TestServers.post(server, "/v1/chat/completions", body, null).body());
    assertArrayEquals(expectedPrompt, ints(whole.get("prompt_token_ids")), whole.toString());
    assertArrayEquals(inProcess(expectedPrompt, 12), ints(whole.at("/choices/0/token_ids")));
    Streamed streamed =
        readStream(
            TestServers.post(
                server,
                "/v1/chat/completions",
                body.substring(0, body.length() - 1) + ",\"stream\":true}",
                null));
    assertArrayEquals(inProcess(expectedPrompt, 12), streamed.ids());
    assertEquals(whole.at("/choices/0/message/content").asText(), streamed.text());
  }

  @Test
  void sixtyFourConcurrentStreamsEachEqualTheirAnswerAlone() throws Exception {
    int streams = 64;
    int[][] prompts = new int[streams][];
    int[][] alone = new int[streams][];
    for (int i = 0; i < streams; i++) {
      prompts[i] = new int[] {507, 40 + i, 100 + (i * 7) % 300, 33 + i % 11, 250};
      alone[i] = inProcess(prompts[i], NEW_TOKENS);
    }
    ExecutorService pool = Executors.newFixedThreadPool(streams);
    try {
      List<Future<Streamed>> futures = new ArrayList<>();
      for (int i = 0; i < streams; i++) {
        String body = completionBody(prompts[i], true);
        futures.add(
            pool.submit(() -> readStream(TestServers.post(server, "/v1/completions", body, null))));
      }
      for (int i = 0; i < streams; i++) {
        assertArrayEquals(alone[i], futures.get(i).get().ids(), "stream " + i);
      }
    } finally {
      pool.shutdownNow();
    }
  }

  /**
   * 512 streams at once, 16 per distinct prompt: every stream ends normally with exactly the tokens
   * its prompt gives alone, so none was lost, duplicated or reordered under load.
   */
  @Test
  void fiveHundredTwelveConcurrentStreamsLoseDuplicateAndReorderNothing() throws Exception {
    int distinct = 32;
    int streams = 512;
    int[][] prompts = new int[distinct][];
    int[][] alone = new int[distinct][];
    for (int i = 0; i < distinct; i++) {
      prompts[i] = new int[] {507, 60 + i, 200 + (i * 13) % 250, 17 + i % 5};
      alone[i] = inProcess(prompts[i], NEW_TOKENS);
    }
    List<CompletableFuture<HttpResponse<String>>> responses = new ArrayList<>();
    for (int s = 0; s < streams; s++) {
      responses.add(
          TestServers.postAsync(
              server, "/v1/completions", completionBody(prompts[s % distinct], true)));
    }
    for (int s = 0; s < streams; s++) {
      HttpResponse<String> response = responses.get(s).get(120, TimeUnit.SECONDS);
      assertTrue(response.body().endsWith("data: [DONE]\n\n"), "stream " + s + " did not finish");
      assertArrayEquals(alone[s % distinct], readStream(response).ids(), "stream " + s);
    }
    assertEquals(0, server.engine().stats().kvBlocksUsed());
  }

  @Test
  void aDisconnectMidStreamReturnsTheKvPoolToFull() throws Exception {
    String body =
        "{\"model\":\"llama-chat\",\"prompt\":\"Once upon a time\",\"max_tokens\":1500,"
            + "\"temperature\":0,\"ignore_eos\":true,\"stream\":true}";
    byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
    try (Socket socket = new Socket("127.0.0.1", server.port())) {
      OutputStream out = socket.getOutputStream();
      out.write(
          ("POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                  + "Content-Length: "
                  + bytes.length
                  + "\r\n\r\n")
              .getBytes(StandardCharsets.US_ASCII));
      out.write(bytes);
      out.flush();
      BufferedReader in =
          new BufferedReader(
              new InputStreamReader(socket.getInputStream(), StandardCharsets.UTF_8));
      int events = 0;
      String line;
      while (events < 5 && (line = in.readLine()) != null) {
        if (line.startsWith("data: ")) {
          events++;
        }
      }
      assertEquals(5, events);
      assertTrue(server.engine().stats().kvBlocksUsed() > 0);
    }
    long deadline = System.nanoTime() + 10_000_000_000L;
    EngineStats stats = server.engine().stats();
    while ((stats.kvBlocksUsed() > 0 || stats.running() > 0) && System.nanoTime() < deadline) {
      Thread.sleep(5);
      stats = server.engine().stats();
    }
    assertEquals(0, stats.running(), stats.toString());
    assertEquals(0, stats.kvBlocksUsed(), stats.toString());
  }
}
