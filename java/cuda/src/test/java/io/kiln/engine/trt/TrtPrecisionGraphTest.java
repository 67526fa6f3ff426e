package io.kiln.engine.trt;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.kiln.Precision;
import io.kiln.engine.ort.OrtProvider;
import io.kiln.model.onnx.Node;
import io.kiln.model.onnx.OnnxModel;
import io.kiln.precision.Float16Qdq;
import io.kiln.precision.PrecisionOptions;
import io.kiln.precision.PrecisionPipeline;
import io.kiln.precision.TestModels;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The graph TensorRT asks for INT8 (no GPU needed to make it). */
class TrtPrecisionGraphTest {
  @TempDir Path dir;

  @Test
  void tensorRtInt8GraphsAreTheSharedLayoutInFloat16() throws Exception {
    Path model = Files.write(dir.resolve("minilm.onnx"), TestModels.miniLmBytes());
    PrecisionOptions options = PrecisionOptions.defaults().withCalibration("random:2");
    Path cacheDir = dir.resolve("cache");
    OnnxModel forTrt =
        OnnxModel.of(
            PrecisionPipeline.apply(
                io.kiln.model.ModelSource.of(model),
                new TrtProvider().graphFor(Precision.INT8),
                options,
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
                io.kiln.model.ModelSource.of(model),
                new OrtProvider().graphFor(Precision.INT8),
                options,
                cacheDir));
    assertTrue(forOrt.opset() < Float16Qdq.OPSET, "opset " + forOrt.opset());
    assertTrue(new TrtProvider().graphFor(Precision.INT8).float16Form());
    assertTrue(!new TrtProvider().graphFor(Precision.FP16).float16Form());
  }
}
