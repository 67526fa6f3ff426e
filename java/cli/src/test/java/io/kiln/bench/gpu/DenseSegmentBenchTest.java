package io.kiln.bench.gpu;

import static org.junit.jupiter.api.Assertions.*;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kiln.DType;
import io.kiln.Device;
import io.kiln.Tensor;
import io.kiln.bench.ReportFiles;
import io.kiln.model.llama.LlamaConfig;
import io.kiln.model.llama.RandomLlamaModel;
import io.kiln.model.onnx.OnnxModel;
import io.kiln.precision.Fp16Converter;
import io.kiln.session.Session;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The TensorRT side of the dense-segment bench computes what the runner's segments compute. */
class DenseSegmentBenchTest {
  @Test
  void segmentsHaveTheRunnersShapes() {
    LlamaConfig c = LlamaConfig.parse(RandomLlamaModel.shape("llama-3.2-1b"), "llama-3.2-1b");
    List<DenseSegmentBench.Segment> s = DenseSegmentBench.segments(c);
    assertEquals(new DenseSegmentBench.Segment("qkv", 2048, 3072, 0), s.get(0));
    assertEquals(new DenseSegmentBench.Segment("o", 2048, 2048, 0), s.get(1));
    assertEquals(new DenseSegmentBench.Segment("mlp", 2048, 2048, 8192), s.get(2));
    assertEquals(2L * 3 * 2048 * 8192, s.get(2).weightBytes());
  }

  @Test
  void theTableMarksPathsThatDoNotApplyAndTakesTheBestRunnerPath() {
    ObjectNode root = ReportFiles.JSON.createObjectNode().put("shape", "s").put("device", "d");
    root.putArray("rows")
        .addObject()
        .put("segment", "mlp")
        .put("tokens", 64)
        .put("cublas_us", 40.0)
        .putNull("skinny_us")
        .putNull("skinny_programmatic_us")
        .put("tensorrt_us", 50.0)
        .put("weight_bytes", 4_000_000L);
    ObjectNode small = ((ArrayNode) root.get("rows")).addObject();
    small
        .put("segment", "o")
        .put("tokens", 1)
        .put("cublas_us", 10.0)
        .put("skinny_us", 6.0)
        .put("skinny_programmatic_us", 5.0)
        .put("fused_norms_us", 4.0)
        .put("tensorrt_us", 8.0)
        .put("weight_bytes", 10_000_000L);
    String md = DenseSegmentBench.markdown(root);
    assertTrue(md.contains("| mlp | 64 | 40.0 | – | – | – | 50.0 | 0.80 | 100 |"), md);
    assertTrue(md.contains("| o | 1 | 10.0 | 6.0 | 5.0 | 4.0 | 8.0 | 0.50 | 2500 |"), md);
    assertTrue(md.contains("| skinny GEMM, norms fused, programmatic |"), md);
    // One chart per segment; a path without points (the skinny GEMM at 64 tokens) has no line.
    var charts = DenseSegmentBench.charts(root);
    assertEquals(2, charts.size());
    assertEquals(Set.of("cuBLAS", "TensorRT FP16"), charts.get(0).getSeriesMap().keySet());
    assertEquals(5, charts.get(1).getSeriesMap().size());
  }

  @Test
  void theMlpGraphIsTheGatedMlp(@TempDir Path dir) throws Exception {
    DenseSegmentBench.Segment mlp = new DenseSegmentBench.Segment("mlp", 8, 8, 12);
    Path file = dir.resolve("mlp.onnx");
    DenseSegmentBench.segmentGraph(mlp, new Random(3)).write(file, "test");
    OnnxModel model = OnnxModel.load(file);
    float[] wgu =
        io.kiln.model.onnx.TensorProtos.floats(model.initializers().get("w_gate_up")); // [8, 24]
    float[] wd =
        io.kiln.model.onnx.TensorProtos.floats(model.initializers().get("w_down")); // [12, 8]
    Random rnd = new Random(System.nanoTime());
    int rows = 3;
    float[] x = new float[rows * 8];
    for (int i = 0; i < x.length; i++) {
      x[i] = (float) rnd.nextGaussian();
    }
    double[] expected = new double[rows * 8];
    for (int r = 0; r < rows; r++) {
      double[] act = new double[12];
      for (int f = 0; f < 12; f++) {
        double gate = 0;
        double up = 0;
        for (int i = 0; i < 8; i++) {
          gate += x[r * 8 + i] * wgu[i * 24 + f];
          up += x[r * 8 + i] * wgu[i * 24 + 12 + f];
        }
        act[f] = gate / (1 + Math.exp(-gate)) * up;
      }
      for (int o = 0; o < 8; o++) {
        for (int f = 0; f < 12; f++) {
          expected[r * 8 + o] += act[f] * wd[f * 8 + o];
        }
      }
    }
    try (Session s = Session.builder(file).device(Device.CPU).build();
        Tensor in = Tensor.of(x, rows, 8);
        Session.Result out = s.infer(Map.of("x", in))) {
      float[] y = out.get("y").toFloatArray();
      for (int i = 0; i < y.length; i++) {
        assertEquals(expected[i], y[i], 1e-4 * (1 + Math.abs(expected[i])), "element " + i);
      }
    }
    OnnxModel fp16 =
        new Fp16Converter(new Fp16Converter.Options(Set.of(), Set.of(), false, false))
            .convert(model)
            .model();
    Path half = dir.resolve("mlp16.onnx");
    java.nio.file.Files.write(half, fp16.toBytes());
    try (Session s = Session.builder(half).device(Device.CPU).build()) {
      assertEquals(DType.F16, s.inputs().get(0).dtype(), "the engine takes fp16 like the runner");
      assertEquals(DType.F16, s.outputs().get(0).dtype());
    }
  }
}
