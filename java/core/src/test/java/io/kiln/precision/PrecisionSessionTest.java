package io.kiln.precision;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.kiln.Device;
import io.kiln.Precision;
import io.kiln.Tensor;
import io.kiln.model.onnx.Node;
import io.kiln.model.onnx.OnnxModel;
import io.kiln.session.Session;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Session.precision(...) produces and reuses converted graphs. */
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
                .device(Device.CPU)
                .precision(Precision.INT8)
                .precisionOptions(options)
                .cacheDir(cacheDir)
                .build();
        Session.Result r = s.infer(feed)) {
      assertEquals(Precision.INT8, s.precision());
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
                .device(Device.CPU)
                .precision(Precision.INT8)
                .precisionOptions(options)
                .cacheDir(cacheDir)
                .build();
        Session.Result r = s.infer(feed)) {
      assertEquals(stamp, Files.getLastModifiedTime(graph).toMillis(), "second session reuses it");
      assertEquals(
          java.util.Arrays.toString(int8Out), java.util.Arrays.toString(r.first().toFloatArray()));
    }
    try (Session s = Session.builder(model).device(Device.CPU).build();
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
  void fp16SessionRunsTheConvertedGraph() throws Exception {
    Path model = Files.write(dir.resolve("minilm.onnx"), TestModels.miniLmBytes());
    try (Session s =
        Session.builder(model)
            .device(Device.CPU)
            .precision(Precision.FP16)
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
}
