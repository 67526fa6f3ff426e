package io.kiln.precision;

import static org.junit.jupiter.api.Assertions.assertEquals;

import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtSession;
import io.kiln.model.onnx.Node;
import io.kiln.model.onnx.OnnxModel;
import java.nio.file.Path;
import java.util.Map;
import java.util.TreeMap;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The Q/DQ placement is what lets ONNX Runtime CPU run the MatMuls in integer kernels: after its
 * graph optimizations no float MatMul may remain in the quantized MiniLM.
 */
class OrtIntegerKernelsTest {
  @TempDir Path dir;

  private Map<String, Integer> optimizedOps(OnnxModel model) throws Exception {
    Path in = dir.resolve("in.onnx");
    Path out = dir.resolve("optimized.onnx");
    model.save(in, false);
    try (OrtSession.SessionOptions o = new OrtSession.SessionOptions()) {
      o.setOptimizationLevel(OrtSession.SessionOptions.OptLevel.ALL_OPT);
      o.setOptimizedModelFilePath(out.toString());
      try (OrtSession s = OrtEnvironment.getEnvironment().createSession(in.toString(), o)) {
        s.getNumInputs();
      }
    }
    Map<String, Integer> ops = new TreeMap<>();
    for (Node n : OnnxModel.load(out).nodes()) {
      ops.merge(n.opType(), 1, Integer::sum);
    }
    return ops;
  }

  @Test
  void everyMatMulRunsInIntegerKernels() throws Exception {
    OnnxModel fp32 = OnnxModel.parse(TestModels.miniLmBytes());
    QuantizerOptions base = QuantizerOptions.defaults().withMethod(CalibrationMethod.MAX);
    CalibrationCache cache =
        new Quantizer(base)
            .calibrate(fp32, "sha", new RandomCalibrationData(fp32, 2, 1, 16, 3), Progress.NONE);
    for (ActivationType type : ActivationType.values()) {
      Map<String, Integer> ops =
          optimizedOps(new Quantizer(base.withActivationType(type)).quantize(fp32, cache));
      int integer =
          ops.getOrDefault("MatMulIntegerToFloat", 0) + ops.getOrDefault("QLinearMatMul", 0);
      assertEquals(48, integer, type + ": " + ops);
      assertEquals(0, ops.getOrDefault("MatMul", 0), type + ": " + ops);
    }
  }
}
