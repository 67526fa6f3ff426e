package io.kiln.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.kiln.cuda.GpuProbe;
import io.kiln.execution.llm.gpu.GpuLlamaRunner;
import io.kiln.model.llama.PublicLlama;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.StringJoiner;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code --device cuda} in the LLM commands: typed refusals without a device, exact with one. */
class CudaDeviceCommandTest {
  private static String join(int[] ids) {
    StringJoiner j = new StringJoiner(",");
    for (int id : ids) {
      j.add(Integer.toString(id));
    }
    return j.toString();
  }

  @Test
  void unknownDeviceIsAnInputError() {
    Path dir = PublicLlama.directory();
    GenerateCommandTest.Run run =
        GenerateCommandTest.kiln(
            "generate", "--model", dir.toString(), "--prompt-ids", "1,2,3", "--device", "tpu");
    assertEquals(ExitCodes.INPUT, run.exit(), run.err());
    assertTrue(run.err().contains("--device"), run.err());
  }

  @Test
  void cudaWithoutADeviceIsABackendErrorNamingTheReason() {
    assumeTrue(GpuProbe.cudaUnavailableReason().isPresent(), "this host has a CUDA device");
    Path dir = PublicLlama.directory();
    GenerateCommandTest.Run run =
        GenerateCommandTest.kiln(
            "generate", "--model", dir.toString(), "--prompt-ids", "1,2,3", "--device", "cuda");
    assertEquals(ExitCodes.BACKEND, run.exit(), run.err());
    assertTrue(run.err().contains("unavailable"), run.err());
  }

  @Test
  @Tag("gpu")
  void generateAndBenchOnCudaMatchTheReference(@TempDir Path tmp) throws Exception {
    assumeTrue(GpuProbe.cudaUnavailableReason().isEmpty(), "no CUDA device");
    assumeTrue(GpuLlamaRunner.kernelsBuilt(), "kernels not built");
    Path dir = PublicLlama.directory();
    PublicLlama.Case c = PublicLlama.cases().get(2);
    GenerateCommandTest.Run run =
        GenerateCommandTest.kiln(
            "generate",
            "--model",
            dir.toString(),
            "--prompt-ids",
            join(c.prompt()),
            "--max-new-tokens",
            "48",
            "--device",
            "cuda",
            "--dtype",
            "f32",
            "--kv-utilization",
            "0.05",
            "--json");
    assertEquals(ExitCodes.OK, run.exit(), run.err());
    JsonNode o = new ObjectMapper().readTree(run.out());
    int[] ids = new int[o.get("new_token_ids").size()];
    for (int i = 0; i < ids.length; i++) {
      ids[i] = o.get("new_token_ids").get(i).asInt();
    }
    assertArrayEquals(c.greedyNewTokens(), ids);

    Path json = tmp.resolve("bench.json");
    GenerateCommandTest.Run bench =
        GenerateCommandTest.kiln(
            "bench-llm",
            "--model",
            dir.toString(),
            "--device",
            "cuda",
            "--concurrency",
            "1,4",
            "--prompt-len",
            "32",
            "--gen-len",
            "16",
            "--max-num-seqs",
            "8",
            "--kv-utilization",
            "0.05",
            "--roofline",
            "--skinny-gemm",
            "--programmatic-launch",
            "--json",
            json.toString());
    assertEquals(ExitCodes.OK, bench.exit(), bench.err());
    JsonNode report = new ObjectMapper().readTree(Files.readString(json));
    assertTrue(report.get("startup").get("kv_blocks").asInt() > 1, report.toString());
    JsonNode roofline = report.get("batch1_roofline");
    assertTrue(roofline.get("step_ms").asDouble() > 0, report.toString());
    double dense = roofline.get("dense_replay_ms").asDouble();
    assertTrue(
        dense > 0 && dense < roofline.get("graph_replay_ms").asDouble(),
        "the dense products alone take part of the step: " + roofline);
    JsonNode stages = roofline.get("stage_replay_ms");
    assertEquals(9, stages.size(), roofline.toString());
    stages
        .fields()
        .forEachRemaining(
            e ->
                assertTrue(
                    e.getValue().asDouble() > 0
                        && e.getValue().asDouble() < roofline.get("graph_replay_ms").asDouble(),
                    "each stage alone takes part of the step: " + e));
    assertEquals("skinny", report.get("batch1_roofline").get("gemm").asText(), report.toString());
    assertTrue(report.get("backend").asText().contains("skinny GEMM"), report.toString());
    assertTrue(report.get("backend").asText().contains("programmatic launch"), report.toString());
    assertEquals(2, report.get("rows").size());
  }
}
