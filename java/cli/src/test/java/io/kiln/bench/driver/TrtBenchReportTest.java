package io.kiln.bench.driver;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The device report is plain JSON merging; it is checked here on rows written by hand. */
class TrtBenchReportTest {
  @Test
  void mergesPeersAndComputesAcceptanceRatios(@TempDir Path dir) throws Exception {
    Path work = Files.createDirectories(dir.resolve("work"));
    Files.writeString(
        work.resolve("results.json"),
        "{\"device\": \"Test GPU\", \"rows\": ["
            + "{\"variant\": \"trt-fp16\", \"graphs\": true, \"batch\": 8, \"items_per_s\": 3000, \"device_only_items_per_s\": 3200,"
            + " \"p50_us\": 2600, \"p99_us\": 2900, \"mean_us\": 2650},"
            + "{\"variant\": \"trt-fp16\", \"graphs\": true, \"batch\": 32, \"items_per_s\": 8000, \"device_only_items_per_s\": 9000,"
            + " \"p50_us\": 4000, \"p99_us\": 4100, \"mean_us\": 4000},"
            + "{\"variant\": \"trt-int8-qdq-ws-typed\", \"graphs\": true, \"batch\": 32, \"items_per_s\": 10000, \"device_only_items_per_s\": 9900,"
            + " \"p50_us\": 3200, \"p99_us\": 3300, \"mean_us\": 3200},"
            + "{\"variant\": \"trt-int8-qdq-wsf-typed\", \"graphs\": true, \"batch\": 32, \"items_per_s\": 9000, \"device_only_items_per_s\": 9000,"
            + " \"p50_us\": 3500, \"p99_us\": 3600, \"mean_us\": 3500}],"
            + " \"accuracy\": [{\"variant\": \"trt-int8-qdq-ws-typed\", \"rel_err_vs_torch_fp32_b8\": 0.026},"
            + " {\"variant\": \"trt-int8-qdq-wsf-typed\", \"rel_err_vs_torch_fp32_b8\": \"NaN\"}],"
            + " \"first_measured_at\": \"2026-01-02T03:04:05Z\", \"last_measured_at\": \"2026-01-02T03:09:00Z\"}");
    Files.writeString(
        work.resolve("peers.json"),
        "{\"environment\": {\"torch\": \"x\"}, \"rows\": ["
            + "{\"variant\": \"torch-cudagraph-fp16\", \"graphs\": true, \"batch\": 8,"
            + " \"items_per_s\": 2000, \"device_only_items_per_s\": 2000, \"p50_us\": 4000, \"p99_us\": 4100, \"mean_us\": 4050}]}");
    Path out = dir.resolve("out");

    TrtBenchReport.write(work, out, "bench/gpu/run-trt-bench.sh", "");

    JsonNode json = new ObjectMapper().readTree(out.resolve("gpu-bert-base.json").toFile());
    assertEquals(5, json.get("rows").size());
    assertEquals(
        1.5,
        json.get("acceptance")
            .get("b8 FP16+graphs / torch CUDA graph FP16 (items/s, host to host)")
            .asDouble(),
        1e-9);
    JsonNode int8 = json.get("acceptance");
    assertEquals(
        1.25,
        int8.get("b32 trt-int8-qdq-ws-typed +graphs / FP16 +graphs (items/s)").asDouble(),
        1e-9,
        "every INT8 variant of the run gets its batch-32 ratio to FP16: " + int8);
    assertEquals(
        1.1,
        int8.get("b32 trt-int8-qdq-ws-typed +graphs / FP16 +graphs (device only)").asDouble(),
        1e-9);
    assertTrue(
        int8.has("b32 trt-int8-qdq-wsf-typed (output not finite) +graphs / FP16 +graphs (items/s)"),
        "a variant with NaN output is marked in its ratio: " + int8);
    assertTrue(
        !int8.has("b32 trt-int8-qdq-wsf-typed +graphs / FP16 +graphs (items/s)"),
        "and not listed as a plain ratio: " + int8);
    String md = Files.readString(out.resolve("gpu-bert-base.md"));
    assertTrue(md.contains("measured 2026-01-02T03:04:05Z to 2026-01-02T03:09:00Z"), md);
    assertTrue(md.contains("| trt-fp16 +graphs | 3000 |"), md);
    assertTrue(md.contains("| torch-cudagraph-fp16 | 2000 |"), md);
    assertTrue(md.contains("1.50×"), md);
    assertTrue(Files.size(out.resolve("gpu-bert-base.png")) > 1000);
  }
}
