package io.kiln.precision;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.kiln.Session;
import io.kiln.Tensor;
import io.kiln.cli.KilnCli;
import io.kiln.model.onnx.Node;
import io.kiln.model.onnx.OnnxModel;
import java.io.ByteArrayOutputStream;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/** Session.precision(...) and kiln quantize produce and reuse converted graphs. */
class PrecisionSessionTest {
  @TempDir Path dir;

  private static long opCount(Path model, String op) {
    return OnnxModel.load(model).nodes().stream().filter(n -> n.opType().equals(op)).count();
  }

  @Test
  void int8SessionCalibratesOnceAndCachesTheGraph() throws Exception {
    Path model = Files.write(dir.resolve("minilm.onnx"), TestModels.miniLmBytes());
    Path cal =
        Files.write(
            dir.resolve("cal.txt"), TestModels.resource("precision/calibration-sentences.txt"));
    Path tok =
        Files.write(
            dir.resolve("tok.json"), TestModels.resource("all-minilm-l6-v2-tokenizer.json"));
    Path calCache = dir.resolve("calibration.json");
    PrecisionOptions options =
        PrecisionOptions.defaults()
            .withCalibration("texts:" + cal)
            .withTokenizer(tok)
            .withCalibrationCache(calCache);
    Path cacheDir = dir.resolve("cache");
    float[] int8Out;
    float[] fp32Out;
    Map<String, Tensor> feed =
        RandomCalibrationData.sample(OnnxModel.load(model), new Random(3), 2, 16);
    try (Session s =
            Session.builder(model)
                .device(Session.Device.CPU)
                .precision(Session.Precision.INT8)
                .precisionOptions(options)
                .cacheDir(cacheDir)
                .build();
        Session.Result r = s.infer(feed)) {
      assertEquals(Session.Precision.INT8, s.precision());
      int8Out = r.first().toFloatArray();
      Path exported = dir.resolve("exported.onnx");
      s.exportOnnx(exported);
      assertTrue(opCount(exported, "QuantizeLinear") > 30);
    }
    assertTrue(Files.isRegularFile(calCache), "calibration cache written");
    Path graph;
    try (Stream<Path> files = Files.list(cacheDir.resolve("precision"))) {
      graph = files.filter(p -> p.toString().endsWith(".onnx")).findFirst().orElseThrow();
    }
    long stamp = Files.getLastModifiedTime(graph).toMillis();
    try (Session s =
            Session.builder(model)
                .device(Session.Device.CPU)
                .precision(Session.Precision.INT8)
                .precisionOptions(options)
                .cacheDir(cacheDir)
                .build();
        Session.Result r = s.infer(feed)) {
      assertEquals(stamp, Files.getLastModifiedTime(graph).toMillis(), "second session reuses it");
      assertEquals(
          java.util.Arrays.toString(int8Out), java.util.Arrays.toString(r.first().toFloatArray()));
    }
    try (Session s = Session.builder(model).device(Session.Device.CPU).build();
        Session.Result r = s.infer(feed)) {
      fp32Out = r.first().toFloatArray();
    }
    double dot = 0;
    double a = 0;
    double b = 0;
    for (int i = 0; i < fp32Out.length; i++) {
      dot += fp32Out[i] * int8Out[i];
      a += fp32Out[i] * fp32Out[i];
      b += int8Out[i] * int8Out[i];
    }
    double cos = dot / Math.sqrt(a * b);
    assertTrue(cos > 0.9 && cos < 0.99999, "token states cosine " + cos);
    feed.values().forEach(Tensor::close);
  }

  @Test
  void tensorRtInt8GraphsAreTheSharedLayoutInFloat16() throws Exception {
    Path model = Files.write(dir.resolve("minilm.onnx"), TestModels.miniLmBytes());
    PrecisionOptions options = PrecisionOptions.defaults().withCalibration("random:2");
    Path cacheDir = dir.resolve("cache");
    OnnxModel forTrt =
        OnnxModel.of(
            PrecisionPipeline.apply(
                io.kiln.engine.ModelSource.of(model),
                Session.Precision.INT8,
                options,
                "tensorrt",
                cacheDir));
    assertTrue(forTrt.opset() >= Float16Qdq.OPSET, "opset " + forTrt.opset());
    java.util.Map<String, Long> quantizes = new java.util.HashMap<>();
    for (Node n : forTrt.nodes()) {
      if (n.opType().equals("QuantizeLinear")) {
        quantizes.merge(n.input(0), 1L, Long::sum);
      }
    }
    quantizes.forEach((t, k) -> assertEquals(1L, k, t + " is quantized " + k + " times"));
    assertEquals(6 * 4, quantizes.size(), "weighted MatMuls only, one Q/DQ pair per tensor");
    // ONNX Runtime keeps its own graph: per-reader pairs in float32.
    OnnxModel forOrt =
        OnnxModel.of(
            PrecisionPipeline.apply(
                io.kiln.engine.ModelSource.of(model),
                Session.Precision.INT8,
                options,
                "onnxruntime",
                cacheDir));
    assertTrue(forOrt.opset() < Float16Qdq.OPSET, "opset " + forOrt.opset());
    assertTrue(PrecisionPipeline.typedInt8(Session.Precision.INT8, "tensorrt"));
    assertTrue(!PrecisionPipeline.typedInt8(Session.Precision.FP16, "tensorrt"));
  }

  @Test
  void fp16SessionRunsTheConvertedGraph() throws Exception {
    Path model = Files.write(dir.resolve("minilm.onnx"), TestModels.miniLmBytes());
    try (Session s =
        Session.builder(model)
            .device(Session.Device.CPU)
            .precision(Session.Precision.FP16)
            .cacheDir(dir.resolve("cache"))
            .build()) {
      Path exported = dir.resolve("fp16.onnx");
      s.exportOnnx(exported);
      OnnxModel m = OnnxModel.load(exported);
      assertTrue(
          m.initializers().values().stream()
              .anyMatch(
                  t ->
                      io.kiln.model.onnx.TensorProtos.dataType(t)
                          == io.kiln.model.onnx.TensorProtos.FLOAT16));
      assertTrue(m.nodes().stream().map(Node::opType).filter("Cast"::equals).count() > 10);
    }
  }

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
    assertEquals(KilnCli.EXIT_OK, code);
    assertTrue(stdout.toString().contains("last_hidden_state"), stdout.toString());
    assertTrue(stdout.toString().contains("cosine"));
    assertTrue(Files.isRegularFile(cache));
    byte[] first = Files.readAllBytes(out);
    // From the cache alone, without calibration data: the same bytes.
    Path again = dir.resolve("again.onnx");
    assertEquals(KilnCli.EXIT_OK, quantizeFromCache(cli, model, cache, again));
    assertTrue(java.util.Arrays.equals(first, Files.readAllBytes(again)));

    assertEquals(
        KilnCli.EXIT_INPUT,
        cli.execute("quantize", model.toString(), "--precision", "int8", "-o", again.toString()));
    // The float16 form for a strongly typed TensorRT build, from the same cache.
    Path half = dir.resolve("half.onnx");
    assertEquals(KilnCli.EXIT_OK, quantizeFromCache(cli, model, cache, half, "--float16"));
    OnnxModel halfModel = OnnxModel.load(half);
    assertTrue(halfModel.opset() >= Float16Qdq.OPSET, "opset " + halfModel.opset());
    assertEquals(
        KilnCli.EXIT_INPUT,
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
        KilnCli.EXIT_MODEL,
        cli.execute("quantize", corrupt.toString(), "--precision", "fp16", "-o", again.toString()));
  }
}
