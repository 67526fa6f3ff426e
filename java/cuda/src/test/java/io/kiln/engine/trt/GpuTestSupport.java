package io.kiln.engine.trt;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import io.kiln.Tensor;
import java.nio.LongBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;

/** Device checks, test model lookup, random BERT inputs and an ONNX Runtime CPU reference. */
final class GpuTestSupport {
  private GpuTestSupport() {}

  static void assumeGpu() {
    assumeTrue(TrtLibrary.isAvailable(), "no CUDA device or TensorRT libraries: GPU test skipped");
  }

  /** {@code -Dkiln.shared=DIR}, else the {@code shared} folder beside the repository. */
  static Path sharedModels() {
    return io.kiln.SharedModels.expected();
  }

  static Path bertModel() {
    Path p = sharedModels().resolve("public/bert/model.onnx");
    assumeTrue(Files.exists(p), "test model " + p + " not found (set -Dkiln.shared): skipped");
    return p;
  }

  /** Random ids in [1, 1000), a prefix mask of random length per row, token types 0 or 1. */
  static Map<String, Tensor> randomBert(Random rnd, int batch, int seq) {
    long[] ids = new long[batch * seq];
    long[] mask = new long[batch * seq];
    long[] types = new long[batch * seq];
    for (int r = 0; r < batch; r++) {
      int len = 1 + rnd.nextInt(seq);
      for (int t = 0; t < seq; t++) {
        int i = r * seq + t;
        ids[i] = 1 + rnd.nextInt(999);
        mask[i] = t < len ? 1 : 0;
        types[i] = t < len / 2 ? 0 : 1;
      }
    }
    Map<String, Tensor> m = new LinkedHashMap<>();
    m.put("input_ids", Tensor.of(ids, batch, seq));
    m.put("attention_mask", Tensor.of(mask, batch, seq));
    m.put("token_type_ids", Tensor.of(types, batch, seq));
    return m;
  }

  /** The first output of the model run by ONNX Runtime on the CPU, in FP32. */
  static float[] ortReference(Path model, Map<String, Tensor> inputs) throws OrtException {
    OrtEnvironment env = OrtEnvironment.getEnvironment();
    try (OrtSession.SessionOptions so = new OrtSession.SessionOptions();
        OrtSession s = env.createSession(model.toString(), so)) {
      Map<String, OnnxTensor> feed = new HashMap<>();
      try {
        for (String name : s.getInputNames()) {
          Tensor t = inputs.get(name);
          feed.put(name, OnnxTensor.createTensor(env, LongBuffer.wrap(t.toLongArray()), t.shape()));
        }
        try (OrtSession.Result r = s.run(feed)) {
          java.nio.FloatBuffer fb = ((OnnxTensor) r.get(0)).getFloatBuffer();
          float[] out = new float[fb.remaining()];
          fb.get(out);
          return out;
        }
      } finally {
        feed.values().forEach(OnnxTensor::close);
      }
    }
  }

  /** ||a - ref|| / ||ref||. */
  static double relErr(float[] a, float[] ref) {
    if (a.length != ref.length) {
      throw new AssertionError("length " + a.length + " vs " + ref.length);
    }
    double num = 0;
    double den = 0;
    for (int i = 0; i < a.length; i++) {
      if (Float.isNaN(a[i])) {
        return Double.NaN;
      }
      double d = a[i] - ref[i];
      num += d * d;
      den += (double) ref[i] * ref[i];
    }
    return Math.sqrt(num / den);
  }
}
