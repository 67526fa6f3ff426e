package io.kiln.cli;

import static org.junit.jupiter.api.Assertions.*;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.kiln.BertReference;
import io.kiln.Tensor;
import io.kiln.model.Npy;
import io.kiln.model.TensorJson;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

class CliTest {
  private static final ObjectMapper JSON = new ObjectMapper();

  record Outcome(int exit, String out, String err) {}

  static Outcome kiln(String... args) {
    KilnCli.configureNativeLimits();
    CommandLine cli = KilnCli.newCommandLine();
    StringWriter out = new StringWriter();
    StringWriter err = new StringWriter();
    cli.setOut(new PrintWriter(out));
    cli.setErr(new PrintWriter(err));
    int exit = cli.execute(args);
    return new Outcome(exit, out.toString(), err.toString());
  }

  @Test
  void runReproducesTheBertReference(@TempDir Path dir) throws Exception {
    BertReference ref = BertReference.load();
    Path inputs = dir.resolve("inputs.json");
    Map<String, Tensor> batch = ref.batch();
    try {
      TensorJson.write(batch, inputs);
    } finally {
      batch.values().forEach(Tensor::close);
    }
    Path output = dir.resolve("out.json");
    Outcome o =
        kiln(
            "run",
            ref.model().toString(),
            "--inputs",
            inputs.toString(),
            "--output",
            output.toString());
    assertEquals(0, o.exit(), o.err());
    JsonNode h = JSON.readTree(output.toFile()).get("last_hidden_state");
    assertEquals("float32", h.get("dtype").asText());
    assertEquals("[" + ref.rows() + "," + ref.length() + ",128]", h.get("shape").toString());
    float[] data = new float[h.get("data").size()];
    for (int i = 0; i < data.length; i++) {
      data[i] = h.get("data").get(i).floatValue();
    }
    int rowSize = ref.length() * 128;
    for (int r = 0; r < ref.rows(); r++) {
      float[] row = java.util.Arrays.copyOfRange(data, r * rowSize, (r + 1) * rowSize);
      assertTrue(ref.maxErrorRow(r, row, ref.length()) <= 1e-4, "row " + r);
    }
  }

  @Test
  void runAcceptsNpyInputsAndWritesNpyOutputs(@TempDir Path dir) throws Exception {
    BertReference ref = BertReference.load();
    Map<String, Tensor> batch = ref.batch();
    try {
      for (Map.Entry<String, Tensor> e : batch.entrySet()) {
        Npy.write(e.getValue(), dir.resolve(e.getKey() + ".npy"));
      }
    } finally {
      batch.values().forEach(Tensor::close);
    }
    Path outDir = dir.resolve("out");
    Outcome o =
        kiln(
            "run",
            ref.model().toString(),
            "--inputs",
            "input_ids=" + dir.resolve("input_ids.npy"),
            "attention_mask=" + dir.resolve("attention_mask.npy"),
            "token_type_ids=" + dir.resolve("token_type_ids.npy"),
            "--output",
            outDir.toString());
    assertEquals(0, o.exit(), o.err());
    try (Tensor h = Npy.read(outDir.resolve("last_hidden_state.npy"))) {
      float[] all = h.toFloatArray();
      int rowSize = ref.length() * 128;
      for (int r = 0; r < ref.rows(); r++) {
        float[] row = java.util.Arrays.copyOfRange(all, r * rowSize, (r + 1) * rowSize);
        assertTrue(ref.maxErrorRow(r, row, ref.length()) <= 1e-4, "row " + r);
      }
    }
  }

  @Test
  void inspectListsInputsAndOutputs() throws Exception {
    BertReference ref = BertReference.load();
    Outcome o = kiln("inspect", ref.model().toString());
    assertEquals(0, o.exit(), o.err());
    assertTrue(o.out().contains("input_ids"), o.out());
    assertTrue(o.out().contains("int64     [batch, sequence]"), o.out());
    assertTrue(
        o.out().contains("last_hidden_state                float32   [batch, sequence, 128]"),
        o.out());
  }

  @Test
  void embedPrintsOneUnitVectorPerText() throws Exception {
    Outcome o = kiln("embed", "The kiln fires clay.", "A cat sleeps on the sofa.");
    assertEquals(0, o.exit(), o.err());
    String[] lines = o.out().trim().split("\n");
    assertEquals(2, lines.length);
    for (String line : lines) {
      JsonNode v = JSON.readTree(line);
      assertEquals(384, v.size());
      double norm = 0;
      for (JsonNode x : v) {
        norm += x.asDouble() * x.asDouble();
      }
      assertEquals(1.0, Math.sqrt(norm), 1e-5);
    }
  }

  @Test
  void benchWritesTableJsonAndPlot(@TempDir Path dir) throws Exception {
    BertReference ref = BertReference.load();
    Path json = dir.resolve("r.json");
    Path png = dir.resolve("r.png");
    Path md = dir.resolve("r.md");
    Outcome o =
        kiln(
            "bench",
            ref.model().toString(),
            "--batch",
            "1,2",
            "--seq",
            "16",
            "--warmup",
            "1",
            "--iterations",
            "4",
            "--rounds",
            "2",
            "--vocab",
            "1000",
            "--json",
            json.toString(),
            "--plot",
            png.toString(),
            "--markdown",
            md.toString());
    assertEquals(0, o.exit(), o.err());
    assertTrue(o.out().contains("| batch | items/s | CPU % | RSS MiB |"), o.out());
    JsonNode report = JSON.readTree(json.toFile());
    assertEquals(2, report.get("results").size());
    JsonNode row = report.get("results").get(1);
    assertEquals(2, row.get("batch").asInt());
    assertEquals(4, row.get("kiln").get("runs").asInt());
    assertTrue(row.get("kiln").get("items_per_s").asDouble() > 0);
    assertTrue(row.get("time_ratio_kiln_over_peer").asDouble() > 0);
    // Kiln and raw ONNX Runtime computed the same outputs.
    assertTrue(row.get("max_abs_diff_vs_peer").asDouble() < 1e-4, row.toString());
    assertTrue(report.get("machine").get("cores").asInt() >= 1);
    assertTrue(report.get("command").asText().startsWith("kiln bench "), report.toString());
    assertTrue(report.has("date"));
    byte[] header = java.util.Arrays.copyOf(Files.readAllBytes(png), 4);
    assertArrayEquals(new byte[] {(byte) 0x89, 'P', 'N', 'G'}, header);
    assertTrue(Files.readString(md).contains("| 2 |"));
  }

  @Test
  void errorsGiveOneLineAndAnExitCode(@TempDir Path dir) throws Exception {
    Outcome missing = kiln("inspect", dir.resolve("nope.onnx").toString());
    assertEquals(ExitCodes.MODEL, missing.exit());
    assertEquals(1, missing.err().trim().lines().count(), missing.err());
    assertTrue(missing.err().startsWith("kiln: model error: model file not found"), missing.err());

    BertReference ref = BertReference.load();
    Path inputs = dir.resolve("bad.json");
    Files.writeString(
        inputs,
        "{\"input_ids\": {\"dtype\": \"int64\", \"shape\": [1, 2]," + " \"data\": [1, 2]}}");
    Outcome bad = kiln("run", ref.model().toString(), "--inputs", inputs.toString());
    assertEquals(ExitCodes.INPUT, bad.exit());
    assertTrue(bad.err().contains("missing input 'attention_mask'"), bad.err());

    Files.writeString(inputs, "{not json");
    assertEquals(
        ExitCodes.INPUT, kiln("run", ref.model().toString(), "--inputs", inputs.toString()).exit());
    assertEquals(ExitCodes.USAGE, kiln("bench", "--batch", "x").exit());
    assertEquals(ExitCodes.INPUT, kiln("bench", "--mode", "turbo").exit());
    assertEquals(ExitCodes.INPUT, kiln("embed", "--model", ref.model().toString(), "t").exit());
  }
}
