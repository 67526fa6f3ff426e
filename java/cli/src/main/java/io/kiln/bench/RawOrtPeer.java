package io.kiln.bench;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import io.kiln.BackendException;
import io.kiln.Tensor;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The same model on plain ONNX Runtime through its own Java API, with the same optimization level
 * and threads as Kiln's CPU backend: the baseline Kiln's overhead is measured against.
 */
public final class RawOrtPeer implements AutoCloseable {
  private final OrtEnvironment env = OrtEnvironment.getEnvironment();
  private final OrtSession session;
  private Map<String, OnnxTensor> prepared = Map.of();

  /** Loads {@code model} from its file, so that external data beside it resolves as usual. */
  public RawOrtPeer(java.nio.file.Path model, int threads) {
    try (OrtSession.SessionOptions options = new OrtSession.SessionOptions()) {
      options.setOptimizationLevel(OrtSession.SessionOptions.OptLevel.ALL_OPT);
      options.setIntraOpNumThreads(threads);
      options.setInterOpNumThreads(1);
      options.setExecutionMode(OrtSession.SessionOptions.ExecutionMode.SEQUENTIAL);
      session = env.createSession(model.toString(), options);
    } catch (OrtException e) {
      throw new BackendException("ONNX Runtime (Java API) cannot load the model: " + e, e);
    }
  }

  /** Copies {@code inputs} into ONNX Runtime tensors once, outside any timing. */
  public void prepare(Map<String, Tensor> inputs) {
    release();
    Map<String, OnnxTensor> p = new LinkedHashMap<>();
    try {
      for (Map.Entry<String, Tensor> e : inputs.entrySet()) {
        Tensor t = e.getValue();
        ByteBuffer b = ByteBuffer.allocateDirect((int) t.byteSize()).order(ByteOrder.nativeOrder());
        b.put(t.buffer()).flip();
        p.put(e.getKey(), createTensor(t, b));
      }
    } catch (OrtException e) {
      p.values().forEach(OnnxTensor::close);
      throw new BackendException("cannot create ONNX Runtime tensors: " + e, e);
    }
    prepared = p;
  }

  private OnnxTensor createTensor(Tensor t, ByteBuffer b) throws OrtException {
    long[] shape = t.shape();
    return switch (t.dtype()) {
      case F32 -> OnnxTensor.createTensor(env, b.asFloatBuffer(), shape);
      case I64 -> OnnxTensor.createTensor(env, b.asLongBuffer(), shape);
      case I32 -> OnnxTensor.createTensor(env, b.asIntBuffer(), shape);
      case I8 -> OnnxTensor.createTensor(env, b, shape, ai.onnxruntime.OnnxJavaType.INT8);
      case BOOL -> OnnxTensor.createTensor(env, b, shape, ai.onnxruntime.OnnxJavaType.BOOL);
      case F16 -> OnnxTensor.createTensor(env, b, shape, ai.onnxruntime.OnnxJavaType.FLOAT16);
      case BF16 -> OnnxTensor.createTensor(env, b, shape, ai.onnxruntime.OnnxJavaType.BFLOAT16);
      case F8E4M3 ->
          throw new io.kiln.InvalidInputException("the ONNX Runtime peer takes no float8 inputs");
    };
  }

  /** One run on the prepared inputs; the outputs are released at once. */
  public void run() {
    try (OrtSession.Result r = session.run(prepared)) {
      if (r.size() == 0) {
        throw new BackendException("ONNX Runtime returned no outputs");
      }
    } catch (OrtException e) {
      throw new BackendException("ONNX Runtime run failed: " + e, e);
    }
  }

  /** The first output of one run, as floats: for checking that both paths agree. */
  public float[] firstOutput() {
    try (OrtSession.Result r = session.run(prepared)) {
      OnnxTensor t = (OnnxTensor) r.get(0);
      java.nio.FloatBuffer f = t.getFloatBuffer();
      float[] out = new float[f.remaining()];
      f.get(out);
      return out;
    } catch (OrtException e) {
      throw new BackendException("ONNX Runtime run failed: " + e, e);
    }
  }

  private void release() {
    prepared.values().forEach(OnnxTensor::close);
    prepared = Map.of();
  }

  @Override
  public void close() {
    release();
    try {
      session.close();
    } catch (OrtException e) {
      throw new BackendException("cannot close ONNX Runtime session: " + e, e);
    }
  }
}
