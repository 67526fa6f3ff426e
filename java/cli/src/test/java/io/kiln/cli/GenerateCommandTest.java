package io.kiln.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.kiln.model.llama.PublicLlama;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.StringJoiner;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

class GenerateCommandTest {
  record Run(int exit, String out, String err) {}

  static Run kiln(String... args) {
    StringWriter out = new StringWriter();
    StringWriter err = new StringWriter();
    CommandLine cli = KilnCli.newCommandLine();
    cli.setOut(new PrintWriter(out));
    cli.setErr(new PrintWriter(err));
    int exit = cli.execute(args);
    return new Run(exit, out.toString(), err.toString());
  }

  private static int[] ints(JsonNode array) {
    int[] out = new int[array.size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = array.get(i).asInt();
    }
    return out;
  }

  private static String join(int[] ids) {
    StringJoiner j = new StringJoiner(",");
    for (int id : ids) {
      j.add(Integer.toString(id));
    }
    return j.toString();
  }

  @Test
  void jsonHasTheReferenceGreedyTokensAndMetrics() throws Exception {
    Path dir = PublicLlama.directory();
    List<PublicLlama.Case> cases = PublicLlama.cases();
    for (int i : new int[] {1, 2}) {
      PublicLlama.Case c = cases.get(i);
      Run run =
          kiln(
              "generate",
              "--model",
              dir.toString(),
              "--prompt-ids",
              join(c.prompt()),
              "--max-new-tokens",
              "48",
              "--threads",
              "2",
              "--json");
      assertEquals(0, run.exit(), run.err());
      JsonNode json = new ObjectMapper().readTree(run.out());
      assertArrayEquals(c.prompt(), ints(json.get("prompt_ids")));
      assertArrayEquals(c.greedyNewTokens(), ints(json.get("new_token_ids")));
      assertEquals(48, json.get("generated_tokens").asInt());
      assertEquals("length", json.get("finish_reason").asText());
      assertTrue(json.get("ttft_ms").asDouble() > 0);
      assertTrue(json.get("tokens_per_second").asDouble() > 0);
    }
  }

  /** Greedy ids and the speculative block of {@code generate --json} with {@code extra} options. */
  private static JsonNode generateJson(PublicLlama.Case c, String... extra) throws Exception {
    List<String> args =
        new java.util.ArrayList<>(
            List.of(
                "generate",
                "--model",
                PublicLlama.directory().toString(),
                "--prompt-ids",
                join(c.prompt()),
                "--max-new-tokens",
                Integer.toString(c.greedyNewTokens().length),
                "--threads",
                "2",
                "--json"));
    args.addAll(List.of(extra));
    Run run = kiln(args.toArray(String[]::new));
    assertEquals(0, run.exit(), run.err());
    return new ObjectMapper().readTree(run.out());
  }

  @Test
  void ngramSpeculationKeepsTheReferenceGreedyTokens() throws Exception {
    long proposed = 0;
    for (PublicLlama.Case c : PublicLlama.cases()) {
      JsonNode json = generateJson(c, "--spec-method", "ngram", "--spec-tokens", "3");
      assertArrayEquals(c.greedyNewTokens(), ints(json.get("new_token_ids")));
      JsonNode spec = json.get("speculative");
      assertTrue(spec.get("accepted").asInt() <= spec.get("proposed").asInt(), spec.toString());
      proposed += spec.get("proposed").asLong();
    }
    // The greedy outputs repeat themselves (102,102,102; 273,354,273,354), so lookups find matches.
    assertTrue(proposed > 0, "nothing proposed");
  }

  @Test
  void aModelDraftingForItselfKeepsTheReferenceTokensAndIsAccepted() throws Exception {
    String self = PublicLlama.directory().toString();
    for (PublicLlama.Case c : PublicLlama.cases()) {
      JsonNode json = generateJson(c, "--spec-method", "draft", "--draft-model", self);
      assertArrayEquals(c.greedyNewTokens(), ints(json.get("new_token_ids")));
      JsonNode spec = json.get("speculative");
      assertTrue(spec.get("proposed").asInt() > 0, spec.toString());
      assertTrue(spec.get("acceptance_rate").asDouble() >= 0.9, spec.toString());
    }
  }

  @Test
  void withoutSpeculationTheJsonHasNoSpeculativeBlock() throws Exception {
    assertFalse(generateJson(PublicLlama.cases().get(0)).has("speculative"));
  }

  @Test
  void plainOutputStreamsTheIds() {
    PublicLlama.Case c = PublicLlama.cases().get(0);
    Run run =
        kiln(
            "generate",
            "--model",
            PublicLlama.directory().toString(),
            "--prompt-ids",
            join(c.prompt()),
            "--max-new-tokens",
            "5");
    assertEquals(0, run.exit(), run.err());
    int[] first5 = java.util.Arrays.copyOf(c.greedyNewTokens(), 5);
    assertEquals(join(first5), run.out().trim());
    assertTrue(run.err().contains("1 prompt + 5 new tokens"), run.err());
  }

  @Test
  void seededSamplingRepeats() throws Exception {
    String[] args = {
      "generate",
      "--model",
      PublicLlama.directory().toString(),
      "--prompt-ids",
      "290,2,239",
      "--max-new-tokens",
      "12",
      "--temperature",
      "0.9",
      "--top-k",
      "40",
      "--top-p",
      "0.9",
      "--seed",
      "5",
      "--json"
    };
    ObjectMapper m = new ObjectMapper();
    JsonNode a = m.readTree(kiln(args).out());
    JsonNode b = m.readTree(kiln(args).out());
    assertEquals(a.get("new_token_ids"), b.get("new_token_ids"));
    args[args.length - 2] = "6";
    JsonNode c = m.readTree(kiln(args).out());
    assertFalse(a.get("new_token_ids").equals(c.get("new_token_ids")));
  }

  @Test
  void textPromptUsesTheTokenizer(@TempDir Path tmp) throws Exception {
    Path dir = PublicLlama.directory();
    Files.createSymbolicLink(tmp.resolve("config.json"), dir.resolve("config.json"));
    Files.createSymbolicLink(tmp.resolve("model.safetensors"), dir.resolve("model.safetensors"));
    StringBuilder vocab = new StringBuilder();
    for (int i = 0; i < 512; i++) {
      String word = i == 203 ? "hello" : i == 290 ? "world" : "t" + i;
      vocab.append(i == 0 ? "" : ",").append('"').append(word).append("\":").append(i);
    }
    Files.writeString(
        tmp.resolve("tokenizer.json"),
        "{\"version\":\"1.0\",\"truncation\":null,\"padding\":null,\"added_tokens\":[],"
            + "\"normalizer\":null,\"pre_tokenizer\":{\"type\":\"Whitespace\"},"
            + "\"post_processor\":null,\"decoder\":null,"
            + "\"model\":{\"type\":\"WordLevel\",\"vocab\":{"
            + vocab
            + "},\"unk_token\":\"t0\"}}");
    Run run =
        kiln(
            "generate",
            "--model",
            tmp.toString(),
            "--prompt",
            "hello",
            "--max-new-tokens",
            "8",
            "--json");
    assertEquals(0, run.exit(), run.err());
    JsonNode json = new ObjectMapper().readTree(run.out());
    assertArrayEquals(new int[] {203}, ints(json.get("prompt_ids")));
    int[] expected = java.util.Arrays.copyOf(PublicLlama.cases().get(0).greedyNewTokens(), 8);
    assertArrayEquals(expected, ints(json.get("new_token_ids")));
    assertEquals("t" + expected[0], json.get("text").asText().split(" ")[0]);
  }

  @Test
  void badInputsExitWithTheirCodes() {
    String dir = PublicLlama.directory().toString();
    Run noTokenizer = kiln("generate", "--model", dir, "--prompt", "hello");
    assertEquals(ExitCodes.INPUT, noTokenizer.exit());
    assertTrue(noTokenizer.err().contains("tokenizer.json"), noTokenizer.err());
    for (String[] bad :
        new String[][] {
          {"--temperature", "-1"}, {"--top-p", "0"}, {"--top-k", "-3"}, {"--max-new-tokens", "0"}
        }) {
      Run run = kiln("generate", "--model", dir, "--prompt-ids", "1,2", bad[0], bad[1]);
      assertEquals(ExitCodes.USAGE, run.exit(), String.join(" ", bad) + ": " + run.err());
    }
    assertEquals(ExitCodes.INPUT, kiln("generate", "--model", dir, "--prompt-ids", "1,512").exit());
    assertEquals(
        ExitCodes.USAGE,
        kiln("generate", "--model", dir, "--prompt-ids", "1", "--prompt", "x").exit());
    assertEquals(
        ExitCodes.MODEL, kiln("generate", "--model", "/nonexistent", "--prompt-ids", "1").exit());
  }
}
