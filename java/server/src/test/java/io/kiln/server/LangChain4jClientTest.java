package io.kiln.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.langchain4j.model.chat.response.ChatResponse;
import dev.langchain4j.model.chat.response.StreamingChatResponseHandler;
import dev.langchain4j.model.openai.OpenAiChatModel;
import dev.langchain4j.model.openai.OpenAiEmbeddingModel;
import dev.langchain4j.model.openai.OpenAiStreamingChatModel;
import io.kiln.embedding.TextEmbedder;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.UnaryOperator;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** LangChain4j's OpenAI models against a server on 127.0.0.1. */
class LangChain4jClientTest {
  private static final String KEY = "lc4j-key";
  private static KilnServer server;
  private static String baseUrl;

  @BeforeAll
  static void start() {
    server = TestServers.start(o -> o.withApiKey(KEY).withEmbeddingModel("default"));
    baseUrl = "http://127.0.0.1:" + server.port() + "/v1";
  }

  @AfterAll
  static void stop() {
    if (server != null) {
      server.close();
    }
  }

  @Test
  void chatsPlainAndStreamedWithTheSameAnswer() throws Exception {
    OpenAiChatModel chat =
        OpenAiChatModel.builder()
            .baseUrl(baseUrl)
            .apiKey(KEY)
            .modelName("llama-chat")
            .temperature(0.0)
            .maxTokens(10)
            .build();
    String answer = chat.chat("Tell me a story");
    assertFalse(answer == null);

    OpenAiStreamingChatModel streaming =
        OpenAiStreamingChatModel.builder()
            .baseUrl(baseUrl)
            .apiKey(KEY)
            .modelName("llama-chat")
            .temperature(0.0)
            .maxTokens(10)
            .build();
    StringBuilder partial = new StringBuilder();
    CompletableFuture<ChatResponse> done = new CompletableFuture<>();
    streaming.chat(
        "Tell me a story",
        new StreamingChatResponseHandler() {
          @Override
          public void onPartialResponse(String text) {
            partial.append(text);
          }

          @Override
          public void onCompleteResponse(ChatResponse response) {
            done.complete(response);
          }

          @Override
          public void onError(Throwable error) {
            done.completeExceptionally(error);
          }
        });
    ChatResponse response = done.get(60, TimeUnit.SECONDS);
    assertEquals(answer, partial.toString());
    assertEquals(answer, response.aiMessage().text());
  }

  @Test
  void embedsLikeInProcessMiniLm() {
    OpenAiEmbeddingModel model =
        OpenAiEmbeddingModel.builder()
            .baseUrl(baseUrl)
            .apiKey(KEY)
            .modelName(ServerOptions.DEFAULT_EMBEDDING_MODEL)
            .build();
    float[] served = model.embed("The quick brown fox").content().vector();
    try (TextEmbedder local = TextEmbedder.defaultModel(UnaryOperator.identity())) {
      float[] expected = local.embed(List.of("The quick brown fox"))[0];
      assertEquals(expected.length, served.length);
      double dot = 0;
      for (int i = 0; i < served.length; i++) {
        dot += expected[i] * served[i];
      }
      assertTrue(dot >= 0.9999, "cosine " + dot);
    }
  }
}
