package io.kiln.bench.gpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.kiln.bench.TinyShallowPair;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** The cycle bench on the CPU runners, with the tiny shallow-draft pair: its report's shape. */
@Timeout(120)
class SpecCycleBenchTest {
  @TempDir Path dir;

  @Test
  void timesEveryCallKindOfACycleAndModelsTheSpeedup() throws Exception {
    TinyShallowPair pair = TinyShallowPair.write(dir);
    Path out = dir.resolve("cycle");
    SpecCycleBench.main(
        new String[] {
          pair.target().toString(),
          pair.draft().toString(),
          "cpu",
          "3",
          "20",
          out.toString(),
          "a test"
        });
    String md = Files.readString(dir.resolve("cycle.md"));
    assertTrue(md.contains("| target verification (4 positions) |"), md);
    assertTrue(md.contains("| draft later round (1 position) |"), md);
    JsonNode json = new ObjectMapper().readTree(dir.resolve("cycle.json").toFile());
    assertEquals("a test", json.get("command").asText());
    assertEquals(4, json.get("calls").size());
    double[] medians = new double[4];
    for (int c = 0; c < 4; c++) {
      JsonNode call = json.get("calls").get(c);
      medians[c] = call.get("median_ms").asDouble();
      assertTrue(medians[c] > 0, call.toString());
      assertEquals(60, call.get("samples_ms").size());
      assertTrue(call.get("device_replay_ms") == null, "no device replay on the CPU");
    }
    double cycle = medians[1] + medians[2] + 2 * medians[3];
    assertEquals(cycle, json.get("cycle_ms").asDouble(), 1e-9);
    assertEquals(4 * medians[0] / cycle, json.get("modeled_speedup").asDouble(), 1e-9);
  }
}
