package io.kiln.model.llama;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** The shared tiny Llama test model and its Hugging Face references; tests skip when absent. */
public final class PublicLlama {
  private PublicLlama() {}

  /** One reference prompt. */
  public record Case(int[] prompt, int[] greedyNewTokens, float[] lastLogits) {}

  /** The model directory; skips the calling test when it is not there. */
  public static Path directory() {
    Path dir = sharedModels().resolve("public/llama");
    assumeTrue(
        Files.isRegularFile(dir.resolve("reference.json")),
        "shared test model not found at " + dir + " (set -Dkiln.shared=DIR)");
    return dir;
  }

  public static List<Case> cases() {
    try {
      JsonNode root = new ObjectMapper().readTree(directory().resolve("reference.json").toFile());
      List<Case> cases = new ArrayList<>();
      for (JsonNode c : root.get("cases")) {
        cases.add(
            new Case(
                ints(c.get("prompt")),
                ints(c.get("greedy_new_tokens")),
                floats(c.get("last_logits"))));
      }
      return cases;
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  static Path sharedModels() {
    return io.kiln.SharedModels.expected();
  }

  private static int[] ints(JsonNode n) {
    int[] out = new int[n.size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = n.get(i).asInt();
    }
    return out;
  }

  private static float[] floats(JsonNode n) {
    float[] out = new float[n.size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = (float) n.get(i).asDouble();
    }
    return out;
  }
}
