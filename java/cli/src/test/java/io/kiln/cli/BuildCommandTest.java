package io.kiln.cli;

import static org.junit.jupiter.api.Assertions.*;

import io.kiln.cuda.Cuda;
import io.kiln.engine.trt.ShapeProfile;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

class BuildCommandTest {
  @TempDir Path dir;

  @Test
  void batchAndSequenceListsGiveOneProfilePerPair() {
    List<ShapeProfile> perBucket = BuildCommand.profiles("1,8,32,64", "128");
    assertEquals(4, perBucket.size());
    assertTrue(perBucket.stream().allMatch(ShapeProfile::isStatic));
    assertEquals(ShapeProfile.fixed(32, 128), perBucket.get(2));
    List<ShapeProfile> dynamic = BuildCommand.profiles("1:8:32", "1:128:256");
    assertEquals(List.of(ShapeProfile.of("1:8:32", "1:128:256")), dynamic);
    assertEquals(6, BuildCommand.profiles("1,8", "64,128,256").size());
  }

  private int run(String... args) {
    java.io.StringWriter buf = new java.io.StringWriter();
    CommandLine cli = KilnCli.newCommandLine();
    cli.setErr(new java.io.PrintWriter(buf, true));
    int rc = cli.execute(args);
    lastErr = buf.toString();
    return rc;
  }

  private String lastErr = "";

  @Test
  void missingModelIsAnErrorMessageNotACrash() {
    int rc =
        run("build", dir.resolve("none.onnx").toString(), "-o", dir.resolve("x.plan").toString());
    assertEquals(ExitCodes.MODEL, rc);
    assertTrue(lastErr.contains("not found"), lastErr);
  }

  @Test
  void badRangeIsRejectedBeforeAnyNativeCall() {
    int rc = run("build", "m.onnx", "--batch", "8:1:4", "-o", dir.resolve("x.plan").toString());
    assertEquals(ExitCodes.INPUT, rc);
    assertTrue(lastErr.contains("min <= opt <= max"), lastErr);
  }

  @Test
  void calibrationDataIsReadLikeQuantizeBeforeAnyNativeCall() throws Exception {
    int rc =
        run(
            "build",
            "m.onnx",
            "--precision",
            "int8",
            "--calibration",
            dir.resolve("none").toString(),
            "-o",
            dir.resolve("x.plan").toString());
    assertEquals(ExitCodes.INPUT, rc);
    assertTrue(lastErr.contains("calibration directory not found"), lastErr);
    Path samples = dir.resolve("samples");
    try (io.kiln.Tensor a = io.kiln.Tensor.of(new long[] {1, 2, 3, 4}, 1, 4);
        io.kiln.Tensor b = io.kiln.Tensor.of(new long[] {1, 2, 3}, 1, 3)) {
      java.nio.file.Files.createDirectories(samples);
      io.kiln.model.TensorJson.write(java.util.Map.of("input_ids", a), samples.resolve("a.json"));
      io.kiln.model.TensorJson.write(java.util.Map.of("input_ids", b), samples.resolve("b.json"));
    }
    rc = run("build", "m.onnx", "--calibration", samples.toString(), "-o", "x.plan");
    assertEquals(ExitCodes.INPUT, rc);
    assertTrue(lastErr.contains("the INT8 calibrator needs one shape"), lastErr);
  }

  @Test
  void withoutAGpuTheBuildSaysSo() throws Exception {
    Assumptions.assumeFalse(Cuda.isAvailable(), "a GPU is present");
    Path model = dir.resolve("m.onnx");
    java.nio.file.Files.write(model, new byte[] {8, 7});
    int rc = run("build", model.toString(), "-o", dir.resolve("x.plan").toString());
    assertEquals(ExitCodes.BACKEND, rc);
    assertTrue(lastErr.contains("CUDA"), lastErr);
  }

  @Test
  void textCalibrationIsTokenizedBeforeTheBuild() throws Exception {
    Assumptions.assumeFalse(Cuda.isAvailable(), "a GPU is present");
    Path model = io.kiln.SharedModels.require("public/bert/model.onnx");
    Path texts = dir.resolve("sentences.txt");
    java.nio.file.Files.writeString(texts, "The kiln fires clay.\nA cat sleeps on the sofa.\n");
    String[] build = {
      "build",
      model.toString(),
      "--precision",
      "int8",
      "--calibration",
      "texts:" + texts,
      "-o",
      dir.resolve("x.plan").toString()
    };
    // Read and tokenized (the default tokenizer), then the build itself needs the GPU.
    assertEquals(ExitCodes.BACKEND, run(build));
    assertTrue(lastErr.contains("CUDA"), lastErr);
    String[] badTokenizer = java.util.Arrays.copyOf(build, build.length + 2);
    badTokenizer[build.length] = "--tokenizer";
    badTokenizer[build.length + 1] = dir.resolve("missing.json").toString();
    int rc = run(badTokenizer);
    assertNotEquals(ExitCodes.BACKEND, rc, lastErr);
    assertNotEquals(ExitCodes.OK, rc, lastErr);
  }
}
