package io.kiln.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.kiln.model.onnx.OnnxModel;
import io.kiln.precision.Float16Qdq;
import io.kiln.precision.TestModels;
import java.io.ByteArrayOutputStream;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/** kiln quantize produces and reuses converted graphs through the session's precision path. */
class QuantizeCommandTest {
  @TempDir Path dir;

  /** {@code kiln quantize MODEL} to INT8 from the calibration cache alone, with {@code extra}. */
  private static int quantizeFromCache(
      CommandLine cli, Path model, Path cache, Path out, String... extra) {
    java.util.List<String> args =
        new java.util.ArrayList<>(
            java.util.List.of(
                "quantize",
                model.toString(),
                "--precision",
                "int8",
                "--method",
                "max",
                "--cache",
                cache.toString(),
                "-o",
                out.toString(),
                "--held-out",
                "random:1"));
    args.addAll(java.util.List.of(extra));
    return cli.execute(args.toArray(String[]::new));
  }

  @Test
  void quantizeCommandWritesGraphCacheAndReport() throws Exception {
    Path model = Files.write(dir.resolve("minilm.onnx"), TestModels.miniLmBytes());
    Path out = dir.resolve("int8.onnx");
    Path cache = dir.resolve("cal.json");
    ByteArrayOutputStream stdout = new ByteArrayOutputStream();
    CommandLine cli = KilnCli.newCommandLine();
    cli.setOut(new PrintWriter(stdout, true));
    int code =
        cli.execute(
            "quantize",
            model.toString(),
            "--precision",
            "int8",
            "--calibration",
            "random:2",
            "--method",
            "max",
            "--cache",
            cache.toString(),
            "-o",
            out.toString(),
            "--held-out",
            "random:1");
    assertEquals(ExitCodes.OK, code);
    assertTrue(stdout.toString().contains("last_hidden_state"), stdout.toString());
    assertTrue(stdout.toString().contains("cosine"));
    assertTrue(Files.isRegularFile(cache));
    byte[] first = Files.readAllBytes(out);
    // From the cache alone, without calibration data: the same bytes.
    Path again = dir.resolve("again.onnx");
    assertEquals(ExitCodes.OK, quantizeFromCache(cli, model, cache, again));
    assertTrue(java.util.Arrays.equals(first, Files.readAllBytes(again)));

    assertEquals(
        ExitCodes.INPUT,
        cli.execute("quantize", model.toString(), "--precision", "int8", "-o", again.toString()));
    // The float16 form for a strongly typed TensorRT build, from the same cache.
    Path half = dir.resolve("half.onnx");
    assertEquals(ExitCodes.OK, quantizeFromCache(cli, model, cache, half, "--float16"));
    OnnxModel halfModel = OnnxModel.load(half);
    assertTrue(halfModel.opset() >= Float16Qdq.OPSET, "opset " + halfModel.opset());
    assertEquals(
        ExitCodes.INPUT,
        cli.execute(
            "quantize",
            model.toString(),
            "--precision",
            "fp16",
            "--float16",
            "-o",
            half.toString()));
    Path corrupt = Files.write(dir.resolve("corrupt.onnx"), new byte[] {1, 2, 3, 4, 5});
    assertEquals(
        ExitCodes.MODEL,
        cli.execute("quantize", corrupt.toString(), "--precision", "fp16", "-o", again.toString()));
  }
}
