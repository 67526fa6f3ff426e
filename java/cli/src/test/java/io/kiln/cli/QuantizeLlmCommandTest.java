package io.kiln.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.kiln.model.llama.PublicLlama;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** kiln quantize-llm writes a model that kiln generate runs. */
class QuantizeLlmCommandTest {
  @Test
  void int8ModelGeneratesTheReferenceFirstTokens(@TempDir Path dir) throws Exception {
    Path out = dir.resolve("int8");
    GenerateCommandTest.Run q =
        GenerateCommandTest.kiln(
            "quantize-llm",
            "--model",
            PublicLlama.directory().toString(),
            "--precision",
            "int8",
            "-o",
            out.toString());
    assertEquals(ExitCodes.OK, q.exit(), q.err());
    assertTrue(
        Files.size(out.resolve("model.safetensors"))
            < Files.size(PublicLlama.directory().resolve("model.safetensors")) / 2,
        "8-bit projections should more than halve the float32 weights");
    // Case 2's first steps have margins well above INT8's logit error (WeightQuantizerTest).
    PublicLlama.Case c = PublicLlama.cases().get(2);
    StringBuilder ids = new StringBuilder();
    for (int id : c.prompt()) {
      ids.append(ids.length() == 0 ? "" : ",").append(id);
    }
    GenerateCommandTest.Run run =
        GenerateCommandTest.kiln(
            "generate",
            "--model",
            out.toString(),
            "--prompt-ids",
            ids.toString(),
            "--max-new-tokens",
            "8",
            "--json");
    assertEquals(ExitCodes.OK, run.exit(), run.err());
    JsonNode json = new ObjectMapper().readTree(run.out());
    int[] tokens = new int[json.get("new_token_ids").size()];
    for (int i = 0; i < tokens.length; i++) {
      tokens[i] = json.get("new_token_ids").get(i).asInt();
    }
    assertArrayEquals(java.util.Arrays.copyOf(c.greedyNewTokens(), 8), tokens);
    // Quantizing on load gives what reading the checkpoint gives, token for token.
    GenerateCommandTest.Run onLoad =
        GenerateCommandTest.kiln(
            "generate",
            "--model",
            PublicLlama.directory().toString(),
            "--quantization",
            "int8",
            "--prompt-ids",
            ids.toString(),
            "--max-new-tokens",
            "8",
            "--json");
    assertEquals(ExitCodes.OK, onLoad.exit(), onLoad.err());
    assertEquals(
        json.get("new_token_ids"), new ObjectMapper().readTree(onLoad.out()).get("new_token_ids"));
  }
}
