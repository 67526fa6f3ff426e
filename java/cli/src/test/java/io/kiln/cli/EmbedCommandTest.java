package io.kiln.cli;

import static io.kiln.Vectors.cosine;
import static org.junit.jupiter.api.Assertions.*;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.kiln.cli.CliTest.Outcome;
import io.kiln.embedding.SentenceTransformersLayout;
import java.io.ByteArrayInputStream;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code kiln embed}, {@code inspect} and {@code run} on a sentence-transformers directory. */
class EmbedCommandTest {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final String ONNX = "/all-minilm-l6-v2.onnx";
  private static final String TOKENIZER = "/all-minilm-l6-v2-tokenizer.json";

  @TempDir static Path root;
  private static Path minilm;
  private static Path bare;

  @BeforeAll
  static void layOut() {
    minilm =
        SentenceTransformersLayout.write(
            root.resolve("minilm"), ONNX, TOKENIZER, true, "pooling_mode_mean_tokens", true);
    bare =
        SentenceTransformersLayout.write(root.resolve("bare"), ONNX, TOKENIZER, false, null, false);
  }

  @Test
  void directoryEmbeddingsEqualTheEmbeddedModel() throws Exception {
    Outcome dir = CliTest.kiln("embed", "--model", minilm.toString(), "The kiln fires clay.", "");
    Outcome embedded = CliTest.kiln("embed", "The kiln fires clay.", "");
    assertEquals(0, dir.exit(), dir.err());
    assertEquals(0, embedded.exit(), embedded.err());
    float[][] a = vectors(dir.out());
    float[][] b = vectors(embedded.out());
    assertEquals(2, a.length);
    for (int i = 0; i < a.length; i++) {
      assertTrue(cosine(a[i], b[i]) >= 0.9999, "text " + i);
    }
  }

  @Test
  void unknownPoolingIsAUsageErrorNamingTheOption() {
    Outcome o = CliTest.kiln("embed", "--model", bare.toString(), "text");
    assertEquals(ExitCodes.USAGE, o.exit());
    assertTrue(o.err().contains("--pooling"), o.err());
    assertEquals("", o.out());
    Outcome badMode =
        CliTest.kiln("embed", "--model", minilm.toString(), "--pooling", "median", "t");
    assertEquals(ExitCodes.USAGE, badMode.exit());
    assertTrue(badMode.err().contains("--pooling"), badMode.err());
  }

  @Test
  void givenPoolingAndNormalizationOverride() throws Exception {
    Outcome o =
        CliTest.kiln(
            "embed", "--model", bare.toString(), "--pooling", "cls", "--no-normalize", "Clay.");
    assertEquals(0, o.exit(), o.err());
    float[] cls = vectors(o.out())[0];
    assertTrue(Math.abs(norm(cls) - 1) > 0.01, "unnormalized: " + norm(cls));
    Outcome mean = CliTest.kiln("embed", "--model", minilm.toString(), "Clay.");
    assertTrue(cosine(cls, vectors(mean.out())[0]) < 0.99);
  }

  @Test
  void dimensionsKeepThePrefixRenormalized() throws Exception {
    Outcome full = CliTest.kiln("embed", "--model", minilm.toString(), "Clay and glaze.");
    Outcome cut =
        CliTest.kiln(
            "embed", "--model", minilm.toString(), "--dimensions", "64", "Clay and glaze.");
    assertEquals(0, cut.exit(), cut.err());
    float[] f = vectors(full.out())[0];
    float[] c = vectors(cut.out())[0];
    assertEquals(64, c.length);
    float[] byHand = io.kiln.embedding.TextEmbedder.normalized(java.util.Arrays.copyOf(f, 64));
    assertTrue(cosine(byHand, c) >= 0.99999);
    assertEquals(1.0, norm(c), 1e-5);
    assertEquals(
        ExitCodes.USAGE,
        CliTest.kiln("embed", "--model", minilm.toString(), "--dimensions", "0", "t").exit());
  }

  @Test
  void promptTextIsPutBeforeEveryInput() throws Exception {
    Outcome prompted =
        CliTest.kiln("embed", "--model", minilm.toString(), "--prompt", "query: ", "kilns");
    Outcome byHand = CliTest.kiln("embed", "--model", minilm.toString(), "query: kilns");
    Outcome plain = CliTest.kiln("embed", "--model", minilm.toString(), "kilns");
    float[] p = vectors(prompted.out())[0];
    assertTrue(cosine(p, vectors(byHand.out())[0]) >= 0.9999);
    assertTrue(cosine(p, vectors(plain.out())[0]) < 0.999);
    Outcome unknown =
        CliTest.kiln("embed", "--model", minilm.toString(), "--prompt-name", "query", "kilns");
    assertEquals(ExitCodes.INPUT, unknown.exit());
    assertTrue(unknown.err().contains("no prompt named 'query'"), unknown.err());
  }

  @Test
  void inputFileAndJsonlFieldWriteJsonlInOrder() throws Exception {
    List<String> texts = List.of("first text", "", "the third, longer text of the file", "4");
    Path lines = root.resolve("texts.txt");
    Files.write(lines, texts, StandardCharsets.UTF_8);
    Path jsonl = root.resolve("texts.jsonl");
    StringBuilder sb = new StringBuilder();
    for (String t : texts) {
      sb.append(JSON.writeValueAsString(java.util.Map.of("id", 1, "body", t))).append('\n');
    }
    Files.writeString(jsonl, sb);
    Path out = root.resolve("out/embeddings.jsonl");
    Outcome fromLines =
        CliTest.kiln(
            "embed",
            "--model",
            minilm.toString(),
            "--input",
            lines.toString(),
            "--output",
            out.toString());
    assertEquals(0, fromLines.exit(), fromLines.err());
    assertEquals("", fromLines.out());
    List<String> written = Files.readAllLines(out);
    assertEquals(texts.size(), written.size());
    Outcome args =
        CliTest.kiln(
            "embed",
            "--model",
            minilm.toString(),
            texts.get(0),
            texts.get(1),
            texts.get(2),
            texts.get(3));
    float[][] expected = vectors(args.out());
    for (int i = 0; i < texts.size(); i++) {
      JsonNode row = JSON.readTree(written.get(i));
      assertEquals(i, row.get("index").asInt());
      assertTrue(cosine(expected[i], floats(row.get("embedding"))) >= 0.9999, "line " + i);
    }
    Outcome fromJsonl =
        CliTest.kiln(
            "embed", "--model", minilm.toString(), "--input", jsonl.toString(), "--field", "body");
    assertEquals(0, fromJsonl.exit(), fromJsonl.err());
    float[][] jsonlVectors = vectors(fromJsonl.out());
    for (int i = 0; i < texts.size(); i++) {
      assertTrue(cosine(expected[i], jsonlVectors[i]) >= 0.9999, "jsonl line " + i);
    }
    Outcome noField =
        CliTest.kiln(
            "embed", "--model", minilm.toString(), "--input", jsonl.toString(), "--field", "text");
    assertEquals(ExitCodes.INPUT, noField.exit());
    assertTrue(noField.err().contains("line 1"), noField.err());
  }

  @Test
  void stdinIsReadWithDash() throws Exception {
    InputStream saved = System.in;
    try {
      System.setIn(new ByteArrayInputStream("one\ntwo\n".getBytes(StandardCharsets.UTF_8)));
      Outcome o = CliTest.kiln("embed", "--model", minilm.toString(), "--input", "-");
      assertEquals(0, o.exit(), o.err());
      assertEquals(2, vectors(o.out()).length);
    } finally {
      System.setIn(saved);
    }
  }

  @Test
  void longInputsAreTruncatedAndCounted() throws Exception {
    Outcome o = CliTest.kiln("embed", "--model", minilm.toString(), "word ".repeat(2000), "short");
    assertEquals(0, o.exit(), o.err());
    assertEquals(2, vectors(o.out()).length);
    assertTrue(o.err().contains("1 of 2 texts were longer"), o.err());
  }

  @Test
  void inspectAndRunTakeADirectory() throws Exception {
    Outcome inspect = CliTest.kiln("inspect", minilm.toString());
    assertEquals(0, inspect.exit(), inspect.err());
    assertTrue(inspect.out().contains("pooling    mean"), inspect.out());
    assertTrue(inspect.out().contains("max tokens 128"), inspect.out());
    Outcome bareInspect = CliTest.kiln("inspect", bare.toString());
    assertTrue(bareInspect.out().contains("needs --pooling"), bareInspect.out());
    Path inputs = root.resolve("run-inputs.json");
    Files.writeString(
        inputs,
        "{\"input_ids\": {\"dtype\": \"int64\", \"shape\": [1, 3], \"data\": [101, 7592, 102]},"
            + " \"attention_mask\": {\"dtype\": \"int64\", \"shape\": [1, 3], \"data\": [1, 1, 1]},"
            + " \"token_type_ids\": {\"dtype\": \"int64\", \"shape\": [1, 3], \"data\": [0, 0, 0]}}");
    Outcome run = CliTest.kiln("run", bare.toString(), "--inputs", inputs.toString());
    assertEquals(0, run.exit(), run.err());
    assertTrue(run.out().contains("last_hidden_state"), run.out());
  }

  static float[][] vectors(String out) throws Exception {
    String[] lines = out.trim().split("\n");
    float[][] v = new float[lines.length][];
    for (int i = 0; i < lines.length; i++) {
      v[i] = floats(JSON.readTree(lines[i]));
    }
    return v;
  }

  static float[] floats(JsonNode array) {
    float[] v = new float[array.size()];
    for (int i = 0; i < v.length; i++) {
      v[i] = (float) array.get(i).asDouble();
    }
    return v;
  }

  static double norm(float[] v) {
    double n = 0;
    for (float x : v) {
      n += (double) x * x;
    }
    return Math.sqrt(n);
  }
}
