package io.kiln.cli;

import static io.kiln.cli.GenerateCommandTest.kiln;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.kiln.BertReference;
import io.kiln.model.llama.PublicLlama;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.StringJoiner;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class BatchCommandTest {
  private static final ObjectMapper JSON = new ObjectMapper();

  /** Every JSON line of the part files Spark wrote under {@code dir}. */
  private static List<JsonNode> jsonLines(Path dir) throws IOException {
    List<JsonNode> out = new ArrayList<>();
    try (Stream<Path> files = Files.list(dir)) {
      for (Path part : files.filter(p -> p.getFileName().toString().startsWith("part-")).toList()) {
        for (String line : Files.readAllLines(part)) {
          out.add(JSON.readTree(line));
        }
      }
    }
    return out;
  }

  private static int[] ints(JsonNode array) {
    int[] out = new int[array.size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = array.get(i).asInt();
    }
    return out;
  }

  @Test
  void embedKeepsTheColumnsAndMarksBadRows(@TempDir Path dir) throws IOException {
    Path input = dir.resolve("texts.jsonl");
    List<String> lines = new ArrayList<>();
    for (int i = 0; i < 20; i++) {
      String text = i == 4 ? "null" : i == 9 ? "\"\"" : "\"sentence number " + i + "\"";
      lines.add("{\"id\": " + i + ", \"lang\": \"en\", \"body\": " + text + "}");
    }
    Files.write(input, lines);
    Path output = dir.resolve("out.jsonl");
    GenerateCommandTest.Run run =
        kiln(
            "batch",
            "embed",
            "--input",
            input.toString(),
            "--column",
            "body",
            "--output",
            output.toString(),
            "--master",
            "local[2]",
            "--partitions",
            "2",
            "--threads",
            "1");
    assertEquals(0, run.exit(), run.err());
    assertTrue(
        run.out().matches("20 rows \\(2 with an error\\) in .* rows/s on local\\[2\\].*\\s"),
        run.out());
    List<JsonNode> rows = jsonLines(output);
    assertEquals(20, rows.size());
    for (JsonNode row : rows) {
      int id = row.get("id").asInt();
      assertEquals("en", row.get("lang").asText());
      if (id == 4 || id == 9) {
        assertTrue(row.get("error").asText().startsWith("invalid input: "), row.toString());
        assertTrue(row.get("embedding") == null || row.get("embedding").isNull());
      } else {
        assertEquals("sentence number " + id, row.get("body").asText());
        assertEquals(384, row.get("embedding").size());
        assertTrue(row.get("error") == null || row.get("error").isNull());
      }
    }
  }

  @Test
  void generateGivesTheTokensOfKilnGenerate(@TempDir Path dir) throws IOException {
    Path model = PublicLlama.directory();
    List<PublicLlama.Case> cases = PublicLlama.cases().subList(0, 3);
    List<String> lines = new ArrayList<>();
    for (int i = 0; i < cases.size(); i++) {
      StringJoiner ids = new StringJoiner(",", "[", "]");
      for (int id : cases.get(i).prompt()) {
        ids.add(Integer.toString(id));
      }
      lines.add("{\"n\": " + i + ", \"prompt\": " + ids + "}");
    }
    Path input = dir.resolve("prompts.jsonl");
    Files.write(input, lines);
    Path output = dir.resolve("generated.parquet.jsonl");
    GenerateCommandTest.Run run =
        kiln(
            "batch",
            "generate",
            "--model",
            model.toString(),
            "--input",
            input.toString(),
            "--output",
            output.toString(),
            "--master",
            "local[2]",
            "--max-new-tokens",
            "12",
            "--threads",
            "1");
    assertEquals(0, run.exit(), run.err());
    Map<Integer, int[]> batch = new HashMap<>();
    for (JsonNode row : jsonLines(output)) {
      batch.put(row.get("n").asInt(), ints(row.get("generated_ids")));
    }
    assertEquals(cases.size(), batch.size());
    for (int i = 0; i < cases.size(); i++) {
      StringJoiner ids = new StringJoiner(",");
      for (int id : cases.get(i).prompt()) {
        ids.add(Integer.toString(id));
      }
      GenerateCommandTest.Run single =
          kiln(
              "generate",
              "--model",
              model.toString(),
              "--prompt-ids",
              ids.toString(),
              "--max-new-tokens",
              "12",
              "--threads",
              "1",
              "--json");
      assertEquals(0, single.exit(), single.err());
      assertArrayEquals(ints(JSON.readTree(single.out()).get("new_token_ids")), batch.get(i));
    }
  }

  @Test
  void runWritesCsvWithArraysAsJsonAndFailFastExitsWithTheInputCode(@TempDir Path dir)
      throws IOException {
    BertReference ref = BertReference.load();
    List<String> lines = new ArrayList<>();
    for (int r = 0; r < ref.rows(); r++) {
      lines.add(
          "{\"r\": "
              + r
              + ", \"input_ids\": "
              + JSON.writeValueAsString(ref.inputIds()[r])
              + ", \"attention_mask\": "
              + JSON.writeValueAsString(ref.attentionMask()[r])
              + ", \"token_type_ids\": "
              + JSON.writeValueAsString(ref.tokenTypes()[r])
              + "}");
    }
    lines.add(
        "{\"r\": 9, \"input_ids\": [1, 2], \"attention_mask\": [1], \"token_type_ids\": [0, 0]}");
    Path input = dir.resolve("rows.jsonl");
    Files.write(input, lines);
    String[] common = {
      "batch",
      "run",
      ref.model().toString(),
      "--input",
      input.toString(),
      "--column",
      "input_ids,attention_mask,token_type_ids",
      "--master",
      "local[2]",
      "--threads",
      "1"
    };
    Path csv = dir.resolve("out.csv");
    GenerateCommandTest.Run run =
        kiln(
            Stream.concat(Stream.of(common), Stream.of("--output", csv.toString()))
                .toArray(String[]::new));
    assertEquals(0, run.exit(), run.err());
    assertTrue(run.out().startsWith("4 rows (1 with an error)"), run.out());

    GenerateCommandTest.Run failed =
        kiln(
            Stream.concat(
                    Stream.of(common),
                    Stream.of("--output", dir.resolve("again.csv").toString(), "--fail-fast"))
                .toArray(String[]::new));
    assertEquals(ExitCodes.INPUT, failed.exit(), failed.err());
    assertTrue(failed.err().contains("kiln: invalid input: "), failed.err());
  }

  @Test
  void formatsAreChosenByExtension(@TempDir Path dir) throws IOException {
    Path input = dir.resolve("texts.txt");
    Files.writeString(input, "hello\n");
    GenerateCommandTest.Run run =
        kiln(
            "batch",
            "embed",
            "--input",
            input.toString(),
            "--output",
            dir.resolve("o.jsonl").toString());
    assertEquals(ExitCodes.USAGE, run.exit());
    assertTrue(run.err().contains("--input must end in .jsonl"), run.err());
  }

  /**
   * Launch-path switches its executors would not honour, and an int8 LM head for every runner (it
   * has no draft model, so only that setting would change its output).
   */
  @Test
  void generateRefusesSettingsItsExecutorsWouldNotHonour(@TempDir Path dir) throws IOException {
    Path input = dir.resolve("prompts.jsonl");
    Files.writeString(input, "{\"prompt\": \"hi\"}\n");
    String[][] settings = {
      {"--no-cuda-graphs"}, {"--no-skinny-gemm"}, {"--no-fused-norms"}, {"--int8-lm-head", "on"}
    };
    for (String[] setting : settings) {
      List<String> args =
          new ArrayList<>(
              List.of(
                  "batch",
                  "generate",
                  "--model",
                  dir.toString(),
                  "--input",
                  input.toString(),
                  "--output",
                  dir.resolve("out.jsonl").toString()));
      args.addAll(List.of(setting));
      GenerateCommandTest.Run run = kiln(args.toArray(String[]::new));
      String flag = String.join(" ", setting);
      assertEquals(ExitCodes.USAGE, run.exit(), flag + ": " + run.err());
      assertTrue(run.err().contains(flag), run.err());
    }
  }
}
