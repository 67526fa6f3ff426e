package io.kiln.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.kiln.SharedModels;
import io.kiln.execution.llm.RunnerOptions;
import io.kiln.server.KilnServer;
import io.kiln.server.ServerOptions;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code kiln bench-serve} against a server started in this JVM on 127.0.0.1. */
class BenchServeCommandTest {
  @TempDir Path dir;

  @Test
  void measuresEachConcurrencyAndWritesTheReports() throws Exception {
    Path model = SharedModels.require("public/llama-chat");
    try (KilnServer server =
        KilnServer.start(
            ServerOptions.defaults(model)
                .withAddress("127.0.0.1", 0)
                .withRunnerOptions(RunnerOptions.defaults().withKvBlocks(256))
                .withEmbeddingModel("none"))) {
      Path json = dir.resolve("serve.json");
      GenerateCommandTest.Run r =
          GenerateCommandTest.kiln(
              "bench-serve",
              "--url",
              "http://127.0.0.1:" + server.port(),
              "--concurrency",
              "1,4",
              "--prompt-len",
              "8",
              "--gen-len",
              "5",
              "--requests",
              "6",
              "--json",
              json.toString(),
              "--markdown",
              dir.resolve("serve.md").toString(),
              "--plot",
              dir.resolve("serve.png").toString());
      assertEquals(0, r.exit(), r.err());
      JsonNode rows = new ObjectMapper().readTree(json.toFile()).get("rows");
      assertEquals(2, rows.size());
      for (JsonNode row : rows) {
        assertEquals(30, row.get("generated_tokens").asInt(), row.toString());
        assertTrue(row.get("ttft_p50_ms").asDouble() > 0);
        assertTrue(row.get("itl_p99_ms").asDouble() >= row.get("itl_p50_ms").asDouble());
      }
      assertTrue(Files.size(dir.resolve("serve.png")) > 0);
      assertTrue(r.out().contains("| 4 | 6 |"), r.out());
    }
  }
}
