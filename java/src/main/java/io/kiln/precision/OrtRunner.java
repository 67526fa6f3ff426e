package io.kiln.precision;

import ai.onnxruntime.OnnxJavaType;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OnnxValue;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import io.kiln.BackendException;
import io.kiln.InvalidInputException;
import io.kiln.Tensor;
import io.kiln.model.onnx.OnnxModel;
import java.nio.ByteBuffer;
import java.nio.FloatBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Runs an ONNX graph on ONNX Runtime CPU and returns its float outputs. The precision passes use it
 * to observe activations (calibration) and to compare a transformed graph with the original.
 */
public final class OrtRunner implements AutoCloseable {
  /** A float output: row-major values and shape. */
  public record Output(long[] shape, float[] data) {}

  private final OrtEnvironment env = OrtEnvironment.getEnvironment();
  private final OrtSession session;

  public OrtRunner(OnnxModel model, int threads) {
    try (OrtSession.SessionOptions opts = new OrtSession.SessionOptions()) {
      if (threads > 0) {
        opts.setIntraOpNumThreads(threads);
      }
      opts.setInterOpNumThreads(1);
      session = open(model, opts);
    } catch (OrtException e) {
      throw new BackendException("ONNX Runtime could not load the model: " + e.getMessage(), e);
    }
  }

  private OrtSession open(OnnxModel model, OrtSession.SessionOptions opts) throws OrtException {
    byte[] bytes;
    try {
      bytes = model.toBytes();
    } catch (io.kiln.ModelException tooLarge) {
      bytes = null;
    }
    if (bytes != null) {
      return env.createSession(bytes, opts);
    }
    try {
      Path dir = Files.createTempDirectory("kiln-ort");
      Path file = dir.resolve("model.onnx");
      model.save(file, true);
      return env.createSession(file.toString(), opts);
    } catch (java.io.IOException e) {
      throw new BackendException("cannot stage the model for ONNX Runtime: " + e.getMessage(), e);
    }
  }

  /** Runs once and returns the float outputs by name (non-float outputs are skipped). */
  public Map<String, Output> run(Map<String, Tensor> inputs) {
    Map<String, OnnxTensor> feeds = new HashMap<>();
    try {
      for (Map.Entry<String, Tensor> e : inputs.entrySet()) {
        if (!session.getInputNames().contains(e.getKey())) {
          continue;
        }
        feeds.put(e.getKey(), toOrt(e.getValue()));
      }
      Map<String, Output> out = new LinkedHashMap<>();
      try (OrtSession.Result r = session.run(feeds)) {
        for (Map.Entry<String, OnnxValue> e : r) {
          if (e.getValue() instanceof OnnxTensor t && t.getInfo().type == OnnxJavaType.FLOAT) {
            FloatBuffer fb = t.getFloatBuffer();
            float[] data = new float[fb.remaining()];
            fb.get(data);
            out.put(e.getKey(), new Output(t.getInfo().getShape(), data));
          }
        }
      }
      return out;
    } catch (OrtException e) {
      throw new BackendException("ONNX Runtime run failed: " + e.getMessage(), e);
    } finally {
      feeds.values().forEach(OnnxTensor::close);
    }
  }

  private OnnxTensor toOrt(Tensor t) throws OrtException {
    ByteBuffer b =
        ByteBuffer.allocateDirect((int) t.byteSize()).order(java.nio.ByteOrder.nativeOrder());
    b.put(t.buffer()).flip();
    OnnxJavaType type =
        switch (t.dtype()) {
          case F32 -> OnnxJavaType.FLOAT;
          case F16 -> OnnxJavaType.FLOAT16;
          case I64 -> OnnxJavaType.INT64;
          case I32 -> OnnxJavaType.INT32;
          case I8 -> OnnxJavaType.INT8;
          case BOOL -> OnnxJavaType.BOOL;
          default -> throw new InvalidInputException("unsupported input dtype " + t.dtype());
        };
    return OnnxTensor.createTensor(env, b, t.shape(), type);
  }

  @Override
  public void close() {
    try {
      session.close();
    } catch (OrtException e) {
      throw new BackendException("closing the ONNX Runtime session failed", e);
    }
  }
}
