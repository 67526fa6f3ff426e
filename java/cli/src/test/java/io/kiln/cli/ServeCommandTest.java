package io.kiln.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.kiln.SharedModels;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/** {@code kiln serve}'s command line: bad options fail before anything is opened or bound. */
class ServeCommandTest {
  @TempDir Path dir;

  /** A serve command running in the background until stopped, and the port it printed. */
  private record Running(ServeCommand command, CompletableFuture<Integer> exit, String port) {}

  /** Serves the shared tiny chat Llama on a free port, without embeddings, with {@code extra}. */
  private static Running serve(String... extra) throws InterruptedException {
    Path model = SharedModels.require("public/llama-chat");
    List<String> args =
        new ArrayList<>(
            List.of(
                "--model",
                model.toString(),
                "--port",
                "0",
                "--embedding-model",
                "none",
                "--kv-blocks",
                "256"));
    args.addAll(List.of(extra));
    ServeCommand command = new ServeCommand();
    CommandLine cli = new CommandLine(command);
    StringWriter out = new StringWriter();
    cli.setOut(new PrintWriter(out, true));
    cli.setErr(new PrintWriter(new StringWriter(), true));
    CompletableFuture<Integer> exit =
        CompletableFuture.supplyAsync(() -> cli.execute(args.toArray(String[]::new)));
    long deadline = System.nanoTime() + 60_000_000_000L;
    Matcher port = Pattern.compile("port (\\d+)").matcher("");
    while (!port.reset(out.toString()).find() && System.nanoTime() < deadline) {
      if (exit.isDone()) {
        command.stop();
        throw new AssertionError("serve exited: " + out);
      }
      Thread.sleep(20);
    }
    return new Running(command, exit, port.group(1));
  }

  private static HttpResponse<String> send(HttpRequest.Builder request) throws Exception {
    return HttpClient.newHttpClient().send(request.build(), HttpResponse.BodyHandlers.ofString());
  }

  private static URI uri(Running running, String path) {
    return URI.create("http://127.0.0.1:" + running.port() + path);
  }

  @Test
  void servesOnAnEphemeralPortWithAKeyUntilStopped() throws Exception {
    Running running = serve("--served-model-name", "tiny", "--api-key", "k1");
    try {
      HttpResponse<String> models =
          send(
              HttpRequest.newBuilder(uri(running, "/v1/models"))
                  .header("Authorization", "Bearer k1"));
      assertEquals(200, models.statusCode(), models.body());
      assertTrue(models.body().contains("\"id\":\"tiny\""), models.body());
      HttpResponse<String> noKey = send(HttpRequest.newBuilder(uri(running, "/v1/models")));
      assertEquals(401, noKey.statusCode());
    } finally {
      running.command().stop();
    }
    assertEquals(ExitCodes.OK, running.exit().get(60, TimeUnit.SECONDS));
  }

  @Test
  void speculativeOptionsReachTheEngine() throws Exception {
    Running running = serve("--spec-method", "ngram", "--spec-tokens", "2");
    try {
      // A prompt that repeats itself gives the n-gram lookup something to find.
      String body =
          "{\"model\":\"llama-chat\",\"prompt\":[7,8,9,7,8,9,7,8,9,7,8],\"max_tokens\":24,"
              + "\"temperature\":0,\"ignore_eos\":true}";
      HttpResponse<String> completion =
          send(
              HttpRequest.newBuilder(uri(running, "/v1/completions"))
                  .header("Content-Type", "application/json")
                  .POST(HttpRequest.BodyPublishers.ofString(body)));
      assertEquals(200, completion.statusCode(), completion.body());
      String metrics = send(HttpRequest.newBuilder(uri(running, "/metrics"))).body();
      Matcher proposed =
          Pattern.compile("(?m)^kiln:spec_proposed_tokens_total (\\S+)$").matcher(metrics);
      assertTrue(proposed.find(), metrics);
      assertTrue(Double.parseDouble(proposed.group(1)) > 0, metrics);
    } finally {
      running.command().stop();
    }
    assertEquals(ExitCodes.OK, running.exit().get(60, TimeUnit.SECONDS));
  }

  @Test
  void aPortOutOfRangeIsAUsageError() {
    GenerateCommandTest.Run r =
        GenerateCommandTest.kiln("serve", "--model", dir.toString(), "--port", "70000");
    assertEquals(ExitCodes.USAGE, r.exit(), r.err());
    assertTrue(r.err().contains("--port"), r.err());
    assertTrue(r.out().isEmpty());
  }

  @Test
  void aMissingModelDirectoryIsAModelError() {
    GenerateCommandTest.Run r =
        GenerateCommandTest.kiln(
            "serve", "--model", dir.resolve("absent").toString(), "--port", "0");
    assertEquals(ExitCodes.MODEL, r.exit(), r.err());
    assertTrue(r.out().isEmpty());
  }

  @Test
  void aNegativeQueueIsAUsageError() {
    GenerateCommandTest.Run r =
        GenerateCommandTest.kiln("serve", "--model", dir.toString(), "--max-queue", "-1");
    assertEquals(ExitCodes.USAGE, r.exit(), r.err());
  }
}
