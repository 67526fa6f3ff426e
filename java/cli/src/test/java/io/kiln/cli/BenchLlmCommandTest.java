package io.kiln.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.kiln.model.llama.PublicLlama;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class BenchLlmCommandTest {
  @Test
  void writesTableJsonAndPlot(@TempDir Path tmp) throws Exception {
    Path json = tmp.resolve("r/bench.json");
    Path png = tmp.resolve("r/bench.png");
    GenerateCommandTest.Run run =
        GenerateCommandTest.kiln(
            "bench-llm",
            "--model",
            PublicLlama.directory().toString(),
            "--concurrency",
            "1,4",
            "--prompt-len",
            "14",
            "--gen-len",
            "6",
            "--kv-blocks",
            "6",
            "--threads",
            "2",
            "--json",
            json.toString(),
            "--plot",
            png.toString());
    assertEquals(0, run.exit(), run.err());
    assertTrue(run.out().contains("| concurrency |"), run.out());
    JsonNode root = new ObjectMapper().readTree(json.toFile());
    assertEquals(14, root.get("prompt_len").asInt());
    assertTrue(root.get("command").asText().startsWith("kiln bench-llm "), root.toString());
    assertTrue(root.get("machine").get("cores").asInt() >= 1);
    JsonNode rows = root.get("rows");
    assertEquals(2, rows.size());
    for (int i = 0; i < 2; i++) {
      JsonNode r = rows.get(i);
      assertEquals(i == 0 ? 1 : 4, r.get("concurrency").asInt());
      int requests = r.get("requests").asInt();
      assertEquals(requests * 6, r.get("generated_tokens").asInt());
      assertTrue(r.get("output_tokens_per_second").asDouble() > 0);
      assertTrue(r.get("ttft_p50_ms").asDouble() <= r.get("ttft_p99_ms").asDouble());
      assertTrue(r.get("itl_p50_ms").asDouble() <= r.get("itl_p99_ms").asDouble());
      assertTrue(r.get("peak_kv_blocks").asInt() <= 6);
    }
    // Four 14-token prompts fit in one block each, but grow into a second: 6 blocks cannot hold 8.
    assertTrue(rows.get(1).get("preemptions").asLong() > 0, rows.get(1).toString());
    byte[] head = java.util.Arrays.copyOf(Files.readAllBytes(png), 4);
    assertArrayEquals(new byte[] {(byte) 0x89, 'P', 'N', 'G'}, head);
  }

  @Test
  void aSharedPrefixIsTakenFromTheCacheUnlessItIsOff(@TempDir Path tmp) throws Exception {
    double[] hitRates = new double[2];
    for (int off = 0; off < 2; off++) {
      Path json = tmp.resolve("prefix-" + off + ".json");
      java.util.List<String> args =
          new java.util.ArrayList<>(
              java.util.List.of(
                  "bench-llm",
                  "--model",
                  PublicLlama.directory().toString(),
                  "--concurrency",
                  "2",
                  "--requests",
                  "6",
                  "--shared-prefix",
                  "48",
                  "--prompt-len",
                  "8",
                  "--gen-len",
                  "4",
                  "--threads",
                  "2",
                  "--json",
                  json.toString()));
      if (off == 1) {
        args.add("--no-prefix-cache");
      }
      GenerateCommandTest.Run run = GenerateCommandTest.kiln(args.toArray(new String[0]));
      assertEquals(0, run.exit(), run.err());
      assertTrue(run.out().contains("prefix cache hits"), run.out());
      JsonNode root = new ObjectMapper().readTree(json.toFile());
      assertEquals(48, root.get("shared_prefix").asInt());
      assertEquals(off == 0, root.get("prefix_caching").asBoolean());
      JsonNode row = root.get("rows").get(0);
      assertEquals(6 * 4, row.get("generated_tokens").asInt());
      hitRates[off] = row.get("prefix_cache_hit_rate").asDouble();
    }
    // Six prompts of 48 + 8 ids: after the first, each finds (most of) its 48-id prefix cached.
    assertTrue(hitRates[0] > 0.4, "hit rate with the cache " + hitRates[0]);
    assertEquals(0.0, hitRates[1], "hit rate with the cache off");
  }

  @Test
  void aSelfDraftingRunReportsItsSpeculation(@TempDir Path tmp) throws Exception {
    Path json = tmp.resolve("spec.json");
    String model = PublicLlama.directory().toString();
    GenerateCommandTest.Run run =
        GenerateCommandTest.kiln(
            "bench-llm",
            "--model",
            model,
            "--concurrency",
            "1,2",
            "--requests",
            "2",
            "--prompt-len",
            "10",
            "--gen-len",
            "20",
            "--threads",
            "2",
            "--spec-method",
            "draft",
            "--draft-model",
            model,
            "--spec-tokens",
            "3",
            "--json",
            json.toString());
    assertEquals(0, run.exit(), run.err());
    assertTrue(run.out().contains("| acceptance | mean accepted length |"), run.out());
    JsonNode root = new ObjectMapper().readTree(json.toFile());
    assertTrue(root.get("speculative").asText().startsWith("draft model "), root.toString());
    for (JsonNode r : root.get("rows")) {
      assertEquals(40, r.get("generated_tokens").asInt(), r.toString());
      long steps = r.get("spec_steps").asLong();
      long proposed = r.get("spec_proposed").asLong();
      long accepted = r.get("spec_accepted").asLong();
      assertTrue(steps > 0 && proposed >= steps && accepted <= proposed, r.toString());
      // The draft is the model itself: (nearly) every proposal is kept.
      assertEquals(accepted / (double) proposed, r.get("spec_acceptance_rate").asDouble(), 1e-12);
      assertTrue(r.get("spec_acceptance_rate").asDouble() >= 0.9, r.toString());
      assertEquals(
          1 + accepted / (double) steps, r.get("spec_mean_accepted_length").asDouble(), 1e-12);
      assertTrue(r.get("spec_mean_accepted_length").asDouble() > 2, r.toString());
      // Each decode step's time splits into drafting, the target's call and the engine's own
      // work. One at a time, every decode step but a request's last verifies.
      long decodeSteps = r.get("decode_steps").asLong();
      if (r.get("concurrency").asLong() == 1) {
        assertTrue(decodeSteps >= steps && decodeSteps <= steps + 2, r.toString());
      }
      double step = r.get("decode_step_ms_mean").asDouble();
      double propose = r.get("decode_propose_ms_mean").asDouble();
      double forward = r.get("decode_forward_ms_mean").asDouble();
      assertTrue(propose > 0 && forward > 0 && propose + forward <= step, r.toString());
    }
  }

  @Test
  void withoutSpeculationTheTableHasNoSpeculationColumns() {
    GenerateCommandTest.Run run =
        GenerateCommandTest.kiln(
            "bench-llm",
            "--model",
            PublicLlama.directory().toString(),
            "--concurrency",
            "1",
            "--requests",
            "1",
            "--prompt-len",
            "4",
            "--gen-len",
            "4");
    assertEquals(0, run.exit(), run.err());
    assertFalse(run.out().contains("acceptance"), run.out());
    assertTrue(run.out().contains("- speculative: off"), run.out());
  }

  @Test
  void badOptionsExitWithTheirCodes() {
    String dir = PublicLlama.directory().toString();
    // A number out of its range is a usage error; a pool too small for the model, bad input.
    assertEquals(
        ExitCodes.USAGE,
        GenerateCommandTest.kiln("bench-llm", "--model", dir, "--concurrency", "0").exit());
    assertEquals(
        ExitCodes.INPUT,
        GenerateCommandTest.kiln(
                "bench-llm",
                "--model",
                dir,
                "--prompt-len",
                "64",
                "--gen-len",
                "64",
                "--kv-blocks",
                "2")
            .exit());
  }
}
