package io.kiln.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.kiln.SharedModels;
import io.kiln.execution.llm.RunnerOptions;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.function.UnaryOperator;

/** Servers on 127.0.0.1 and an ephemeral port, over the shared tiny chat Llama. */
final class TestServers {
  static final String CHAT_MODEL = "public/llama-chat";
  static final ObjectMapper JSON = new ObjectMapper();
  static final HttpClient HTTP =
      HttpClient.newBuilder()
          .version(HttpClient.Version.HTTP_1_1)
          .connectTimeout(Duration.ofSeconds(10))
          .build();

  private TestServers() {}

  /** The tiny chat Llama; skips the test when ../shared is absent. */
  static Path chatModel() {
    return SharedModels.require(CHAT_MODEL);
  }

  static ServerOptions options(Path model) {
    return ServerOptions.defaults(model)
        .withAddress("127.0.0.1", 0)
        .withRunnerOptions(RunnerOptions.defaults().withKvBlocks(1024))
        .withEmbeddingModel("none");
  }

  static KilnServer start(UnaryOperator<ServerOptions> tune) {
    return KilnServer.start(tune.apply(options(chatModel())));
  }

  static URI uri(KilnServer server, String path) {
    return URI.create("http://127.0.0.1:" + server.port() + path);
  }

  /** A raw response: status, headers and body text. */
  static HttpResponse<String> post(KilnServer server, String path, String body, String key)
      throws IOException, InterruptedException {
    HttpRequest.Builder request =
        HttpRequest.newBuilder(uri(server, path))
            .timeout(Duration.ofSeconds(60))
            .header("Content-Type", "application/json")
            .POST(HttpRequest.BodyPublishers.ofString(body));
    if (key != null) {
      request.header("Authorization", "Bearer " + key);
    }
    return HTTP.send(request.build(), HttpResponse.BodyHandlers.ofString());
  }

  /** A POST without a thread waiting on it: its whole body once the response ends. */
  static java.util.concurrent.CompletableFuture<HttpResponse<String>> postAsync(
      KilnServer server, String path, String body) {
    HttpRequest request =
        HttpRequest.newBuilder(uri(server, path))
            .timeout(Duration.ofSeconds(120))
            .header("Content-Type", "application/json")
            .POST(HttpRequest.BodyPublishers.ofString(body))
            .build();
    return HTTP.sendAsync(request, HttpResponse.BodyHandlers.ofString());
  }

  static HttpResponse<String> get(KilnServer server, String path)
      throws IOException, InterruptedException {
    return HTTP.send(
        HttpRequest.newBuilder(uri(server, path)).timeout(Duration.ofSeconds(60)).GET().build(),
        HttpResponse.BodyHandlers.ofString());
  }

  static JsonNode json(String text) throws IOException {
    return JSON.readTree(text);
  }
}
