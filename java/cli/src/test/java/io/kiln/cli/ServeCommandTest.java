package io.kiln.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.kiln.SharedModels;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
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

  @Test
  void servesOnAnEphemeralPortWithAKeyUntilStopped() throws Exception {
    Path model = SharedModels.require("public/llama-chat");
    ServeCommand command = new ServeCommand();
    CommandLine cli = new CommandLine(command);
    StringWriter out = new StringWriter();
    cli.setOut(new PrintWriter(out, true));
    cli.setErr(new PrintWriter(new StringWriter(), true));
    CompletableFuture<Integer> exit =
        CompletableFuture.supplyAsync(
            () ->
                cli.execute(
                    "--model",
                    model.toString(),
                    "--port",
                    "0",
                    "--served-model-name",
                    "tiny",
                    "--api-key",
                    "k1",
                    "--embedding-model",
                    "none",
                    "--kv-blocks",
                    "256"));
    try {
      long deadline = System.nanoTime() + 60_000_000_000L;
      Matcher port = Pattern.compile("port (\\d+)").matcher("");
      while (!port.reset(out.toString()).find() && System.nanoTime() < deadline) {
        assertFalse(exit.isDone(), "serve exited: " + out);
        Thread.sleep(20);
      }
      HttpClient http = HttpClient.newHttpClient();
      HttpResponse<String> models =
          http.send(
              HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port.group(1) + "/v1/models"))
                  .header("Authorization", "Bearer k1")
                  .build(),
              HttpResponse.BodyHandlers.ofString());
      assertEquals(200, models.statusCode(), models.body());
      assertTrue(models.body().contains("\"id\":\"tiny\""), models.body());
      HttpResponse<String> noKey =
          http.send(
              HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port.group(1) + "/v1/models"))
                  .build(),
              HttpResponse.BodyHandlers.ofString());
      assertEquals(401, noKey.statusCode());
    } finally {
      command.stop();
    }
    assertEquals(ExitCodes.OK, exit.get(60, TimeUnit.SECONDS));
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
