package io.kiln.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.kiln.InvalidInputException;
import java.awt.image.BufferedImage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** The speculation bench on the CPU runners, with the tiny shallow-draft pair: its report. */
@Timeout(180)
class SpecBenchTest {
  @TempDir Path dir;

  @Test
  void comparesEveryCaseWithPlainSlotBySlotAndPricesItWithTheTimedCalls() throws Exception {
    TinyShallowPair pair = TinyShallowPair.write(dir);
    Path out = dir.resolve("spec");
    SpecBench.main(
        new String[] {
          pair.target().toString(),
          pair.draft().toString(),
          "cpu",
          out.toString(),
          "2",
          "12",
          "2,3",
          "1",
          "tiny shallow pair",
          "a test",
          "off"
        });

    String md = Files.readString(dir.resolve("spec.md"));
    assertTrue(md.contains("| target verification (4 positions) |"), md);
    assertTrue(md.contains("| draft first round (2 positions, 1 token) |"), md);
    JsonNode json = new ObjectMapper().readTree(dir.resolve("spec.json").toFile());
    assertEquals("a test", json.get("command").asText());
    assertEquals("cpu", json.get("device").asText());
    assertEquals(
        "off", json.get("int8_lm_head").asText(), "the setting asked for, not the default");
    assertEquals(
        "every speculative run gave the tokens of the plain run of its slot",
        json.get("greedy_outputs").asText());
    List<String> names = new ArrayList<>();
    json.get("rows").forEach(r -> names.add(r.get("decoding").asText()));
    assertEquals(
        List.of(
            "plain",
            "ngram K=2",
            "ngram K=3",
            "draft K=2",
            "draft K=3",
            "draft model alone (plain)"),
        names);

    JsonNode costs = json.get("call_costs");
    double decode = costs.get("target decode (1 position)").asDouble();
    double round = costs.get("draft round (1 position)").asDouble();
    double first = costs.get("draft first round (2 positions, 1 token)").asDouble();
    JsonNode plain = json.get("rows").get(0);
    for (JsonNode row : json.get("rows")) {
      // Each slot's speedup is that run's decode rate over plain decoding's in the same slot.
      for (int slot = 0; slot < 2; slot++) {
        double expected =
            row.get("runs").get(slot).get("decode_tokens_per_second_per_request").asDouble()
                / plain
                    .get("runs")
                    .get(slot)
                    .get("decode_tokens_per_second_per_request")
                    .asDouble();
        assertEquals(expected, row.get("speedup_vs_plain_per_slot").get(slot).asDouble(), 1e-9);
      }
      assertTrue(row.get("first_token_ms_mean").asDouble() > 0, row.toString());
      if (!row.has("spec_tokens")) {
        continue;
      }
      int k = row.get("spec_tokens").asInt();
      long steps = row.get("decode_steps").asLong();
      long verifications = row.get("spec_steps").asLong();
      long accepted = row.get("spec_accepted").asLong();
      assertTrue(accepted <= row.get("spec_proposed").asLong());
      assertTrue(verifications > 0 && verifications <= steps, row.toString());
      double verify = costs.get("target verification (" + (k + 1) + " positions)").asDouble();
      double perVerification =
          row.get("decoding").asText().startsWith("draft")
              ? verify + first + (k - 1) * round
              : verify;
      double millis = (steps - verifications) * decode + verifications * perVerification;
      assertEquals(
          (steps + accepted) * decode / millis,
          row.get("modeled_speedup").asDouble(),
          1e-9,
          row.toString());
    }
    assertEquals(1.0, plain.get("speedup_vs_plain").asDouble(), 1e-12);
    // The first layer alone predicts the scaled target's greedy tokens most of the time.
    assertTrue(json.get("rows").get(4).get("acceptance_rate").asDouble() > 0.5, json.toString());
    assertTrue(Files.size(dir.resolve("spec.png")) > 0);

    // The plot drawn again from the JSON alone is the bench's own, pixel for pixel.
    Path copy = Files.copy(dir.resolve("spec.json"), dir.resolve("again.json"));
    SpecPlot.main(new String[] {copy.toString()});
    BufferedImage original = ImageIO.read(dir.resolve("spec.png").toFile());
    BufferedImage again = ImageIO.read(dir.resolve("again.png").toFile());
    assertEquals(original.getWidth(), again.getWidth());
    assertEquals(original.getHeight(), again.getHeight());
    for (int y = 0; y < original.getHeight(); y++) {
      for (int x = 0; x < original.getWidth(); x++) {
        assertEquals(original.getRGB(x, y), again.getRGB(x, y), "pixel " + x + "," + y);
      }
    }
  }

  @Test
  void replottingSomethingElseIsATypedError() throws Exception {
    Path json = Files.writeString(dir.resolve("other.json"), "{\"rows\": []}");
    InvalidInputException e =
        assertThrows(
            InvalidInputException.class, () -> SpecPlot.replot(json, dir.resolve("other.png")));
    assertTrue(e.getMessage().contains("needs call_costs and rows"), e.getMessage());
    assertFalse(Files.exists(dir.resolve("other.png")));
  }
}
