package io.kiln.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.openai.client.OpenAIClient;
import com.openai.client.okhttp.OpenAIOkHttpClient;
import com.openai.core.JsonValue;
import com.openai.core.http.StreamResponse;
import com.openai.errors.NotFoundException;
import com.openai.errors.UnauthorizedException;
import com.openai.models.chat.completions.ChatCompletion;
import com.openai.models.chat.completions.ChatCompletionChunk;
import com.openai.models.chat.completions.ChatCompletionCreateParams;
import com.openai.models.chat.completions.ChatCompletionStreamOptions;
import com.openai.models.completions.Completion;
import com.openai.models.completions.CompletionCreateParams;
import com.openai.models.embeddings.CreateEmbeddingResponse;
import com.openai.models.embeddings.EmbeddingCreateParams;
import com.openai.models.models.Model;
import io.kiln.embedding.TextEmbedder;
import java.util.ArrayList;
import java.util.List;
import java.util.function.UnaryOperator;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** The official openai-java client against a server on 127.0.0.1. */
class OpenAiClientTest {
  private static final String KEY = "test-key-123";
  private static KilnServer server;
  private static OpenAIClient client;

  @BeforeAll
  static void start() {
    server = TestServers.start(o -> o.withApiKey(KEY).withEmbeddingModel("default"));
    client = client(KEY);
  }

  @AfterAll
  static void stop() {
    if (client != null) {
      client.close();
    }
    if (server != null) {
      server.close();
    }
  }

  private static OpenAIClient client(String key) {
    return OpenAIOkHttpClient.builder()
        .baseUrl("http://127.0.0.1:" + server.port() + "/v1")
        .apiKey(key)
        .maxRetries(0)
        .build();
  }

  @Test
  void listsTheServedModel() {
    List<Model> models = client.models().list().data();
    assertEquals(1, models.size());
    assertEquals("llama-chat", models.get(0).id());
    assertEquals("llama-chat", client.models().retrieve("llama-chat").id());
    assertThrows(NotFoundException.class, () -> client.models().retrieve("gpt-4o"));
  }

  @Test
  void chatAnswersAndStreamsTheSameText() {
    ChatCompletionCreateParams params =
        ChatCompletionCreateParams.builder()
            .model("llama-chat")
            .addUserMessage("Hello there")
            .maxCompletionTokens(12)
            .temperature(0.0)
            .build();
    ChatCompletion plain = client.chat().completions().create(params);
    assertEquals(JsonValue.from("chat.completion"), plain._object_());
    assertTrue(plain.id().startsWith("chatcmpl-"));
    String text = plain.choices().get(0).message().content().orElseThrow();
    long completionTokens = plain.usage().orElseThrow().completionTokens();
    assertTrue(completionTokens >= 1 && completionTokens <= 12, "tokens " + completionTokens);

    StringBuilder streamed = new StringBuilder();
    List<ChatCompletionChunk> chunks = new ArrayList<>();
    ChatCompletionCreateParams streaming =
        params.toBuilder()
            .streamOptions(ChatCompletionStreamOptions.builder().includeUsage(true).build())
            .build();
    try (StreamResponse<ChatCompletionChunk> stream =
        client.chat().completions().createStreaming(streaming)) {
      stream.stream().forEach(chunks::add);
    }
    for (ChatCompletionChunk chunk : chunks) {
      chunk.choices().forEach(c -> c.delta().content().ifPresent(streamed::append));
    }
    assertEquals(text, streamed.toString());
    ChatCompletionChunk last = chunks.get(chunks.size() - 1);
    assertTrue(last.choices().isEmpty());
    assertEquals(completionTokens, last.usage().orElseThrow().completionTokens());
    String finish =
        chunks.get(chunks.size() - 2).choices().get(0).finishReason().orElseThrow().toString();
    assertEquals(plain.choices().get(0).finishReason().toString(), finish);
  }

  @Test
  void completesTextGreedily() {
    CompletionCreateParams params =
        CompletionCreateParams.builder()
            .model("llama-chat")
            .prompt("The capital of France is")
            .maxTokens(8)
            .temperature(0.0)
            .putAdditionalBodyProperty("ignore_eos", JsonValue.from(true))
            .build();
    Completion first = client.completions().create(params);
    Completion second = client.completions().create(params);
    assertEquals(JsonValue.from("text_completion"), first._object_());
    assertEquals(8, first.usage().orElseThrow().completionTokens());
    assertEquals("length", first.choices().get(0).finishReason().toString());
    assertEquals(first.choices().get(0).text(), second.choices().get(0).text());
  }

  @Test
  void embeddingsEqualInProcessMiniLm() {
    List<String> texts = List.of("A cat sat on the mat.", "Kiln serves models over HTTP.");
    CreateEmbeddingResponse response =
        client
            .embeddings()
            .create(
                EmbeddingCreateParams.builder()
                    .model(ServerOptions.DEFAULT_EMBEDDING_MODEL)
                    .inputOfArrayOfStrings(texts)
                    .build());
    try (TextEmbedder local = TextEmbedder.defaultModel(UnaryOperator.identity())) {
      float[][] expected = local.embed(texts);
      assertEquals(texts.size(), response.data().size());
      for (int i = 0; i < texts.size(); i++) {
        List<Float> served = response.data().get(i).embedding();
        assertEquals(expected[i].length, served.size());
        double dot = 0;
        double a = 0;
        double b = 0;
        for (int j = 0; j < expected[i].length; j++) {
          dot += expected[i][j] * served.get(j);
          a += expected[i][j] * expected[i][j];
          b += served.get(j) * served.get(j);
        }
        double cosine = dot / Math.sqrt(a * b);
        assertTrue(cosine >= 0.9999, "cosine " + cosine);
      }
    }
  }

  @Test
  void aWrongKeyIsRefused() {
    OpenAIClient wrong = client("not-the-key");
    try {
      UnauthorizedException e =
          assertThrows(UnauthorizedException.class, () -> wrong.models().list());
      assertEquals(401, e.statusCode());
    } finally {
      wrong.close();
    }
  }

  @Test
  void anUnknownModelIsNotFound() {
    NotFoundException e =
        assertThrows(
            NotFoundException.class,
            () ->
                client
                    .chat()
                    .completions()
                    .create(
                        ChatCompletionCreateParams.builder()
                            .model("gpt-4o")
                            .addUserMessage("hi")
                            .build()));
    assertFalse(e.getMessage().isEmpty());
  }
}
