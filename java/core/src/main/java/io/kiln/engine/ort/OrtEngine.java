package io.kiln.engine.ort;

import static org.bytedeco.onnxruntime.global.onnxruntime.*;

import io.kiln.BackendException;
import io.kiln.ModelException;
import io.kiln.Tensor;
import io.kiln.TensorInfo;
import io.kiln.engine.Engine;
import io.kiln.model.ModelSource;
import io.kiln.util.CallGate;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.javacpp.PointerPointer;
import org.bytedeco.onnxruntime.AllocatorWithDefaultOptions;
import org.bytedeco.onnxruntime.ConstTensorTypeAndShapeInfo;
import org.bytedeco.onnxruntime.Env;
import org.bytedeco.onnxruntime.MemoryInfo;
import org.bytedeco.onnxruntime.OrtAllocator;
import org.bytedeco.onnxruntime.RunOptions;
import org.bytedeco.onnxruntime.Session;
import org.bytedeco.onnxruntime.SessionOptions;
import org.bytedeco.onnxruntime.TensorTypeAndShapeInfo;
import org.bytedeco.onnxruntime.TypeInfo;
import org.bytedeco.onnxruntime.Value;
import org.bytedeco.onnxruntime.ValueVector;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * ONNX Runtime on the CPU through its C++ API. Inputs are bound to the callers' native memory and
 * outputs are handed over as views of ONNX Runtime's own buffers, so no tensor data is copied.
 */
public final class OrtEngine implements Engine {
  /** How long close waits for runs inside, before and after asking them to terminate. */
  static final Duration CLOSE_WAIT = Duration.ofSeconds(30);

  private static final Logger LOG = LoggerFactory.getLogger(OrtEngine.class);
  private static final Object ENV_LOCK = new Object();
  private static final OrtLog LOG_SINK = new OrtLog();
  private static Env env;

  private final Session session;
  private final SessionOptions options;
  private final MemoryInfo cpuMemory;
  private final RunOptions runOptions;
  private final List<TensorInfo> inputs;
  private final List<TensorInfo> outputs;
  private final PointerPointer<BytePointer> outputNames;
  private final int intraOpThreads;
  private final CallGate gate = new CallGate("ONNX Runtime engine");

  private OrtEngine(ModelSource model, int intraOpThreads) {
    this.intraOpThreads = intraOpThreads;
    options = new SessionOptions();
    options.SetGraphOptimizationLevel(ORT_ENABLE_ALL);
    options.SetIntraOpNumThreads(intraOpThreads);
    options.SetInterOpNumThreads(1);
    options.SetExecutionMode(ORT_SEQUENTIAL);
    try {
      session =
          model.path().isPresent()
              ? new Session(sharedEnv(), new BytePointer(model.path().get().toString()), options)
              : new Session(
                  sharedEnv(), new BytePointer(model.bytes()), model.bytes().length, options);
    } catch (RuntimeException e) {
      options.close();
      throw new ModelException(
          "ONNX Runtime cannot load model " + model.name() + ": " + e.getMessage(), e);
    }
    cpuMemory = MemoryInfo.CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
    runOptions = new RunOptions();
    try (AllocatorWithDefaultOptions defaults = new AllocatorWithDefaultOptions();
        PointerPointer<Pointer> handle = new PointerPointer<>(defaults)) {
      // The C++ wrapper holds exactly one member, the OrtAllocator* it wraps.
      OrtAllocator allocator = new OrtAllocator(handle.get(0));
      inputs = describe(allocator, true);
      outputs = describe(allocator, false);
    }
    // The array constructor keeps the name pointers reachable; put(i, p) alone would let GC free
    // them.
    BytePointer[] names = new BytePointer[outputs.size()];
    for (int i = 0; i < names.length; i++) {
      names[i] = new BytePointer(outputs.get(i).name());
    }
    outputNames = new PointerPointer<>(names);
  }

  /** Loads a model with all graph optimizations on and {@code intraOpThreads} compute threads. */
  public static OrtEngine load(ModelSource model, int intraOpThreads) {
    if (intraOpThreads < 1) {
      throw new IllegalArgumentException("intraOpThreads must be >= 1, got " + intraOpThreads);
    }
    return new OrtEngine(model, intraOpThreads);
  }

  /** The ONNX Runtime version string, such as {@code 1.20.0}. */
  public static String version() {
    return GetVersionString().getString();
  }

  private static Env sharedEnv() {
    synchronized (ENV_LOCK) {
      if (env == null) {
        env = new Env(ORT_LOGGING_LEVEL_WARNING, "kiln", LOG_SINK, null);
      }
      return env;
    }
  }

  private List<TensorInfo> describe(OrtAllocator allocator, boolean forInputs) {
    long count = forInputs ? session.GetInputCount() : session.GetOutputCount();
    List<TensorInfo> infos = new ArrayList<>();
    for (long i = 0; i < count; i++) {
      BytePointer namePtr =
          forInputs
              ? session.GetInputNameAllocated(i, allocator)
              : session.GetOutputNameAllocated(i, allocator);
      String name = namePtr.getString();
      TypeInfo type = forInputs ? session.GetInputTypeInfo(i) : session.GetOutputTypeInfo(i);
      if (type.GetONNXType() != ONNX_TYPE_TENSOR) {
        throw new ModelException("'" + name + "' is not a tensor; Kiln supports tensor IO only");
      }
      ConstTensorTypeAndShapeInfo shapeInfo = type.GetTensorTypeAndShapeInfo();
      long[] dims = shapeInfo.GetShape().get();
      int rank = dims.length;
      String[] symbolic = new String[rank];
      if (rank > 0) {
        try (PointerPointer<BytePointer> names = new PointerPointer<>(rank)) {
          shapeInfo.GetSymbolicDimensions(names, rank);
          for (int d = 0; d < rank; d++) {
            BytePointer s = names.get(BytePointer.class, d);
            symbolic[d] = s == null || s.isNull() || s.getString().isEmpty() ? null : s.getString();
          }
        }
      }
      infos.add(
          new TensorInfo(
              name, OrtTypes.fromOnnx(shapeInfo.GetElementType(), name), dims, symbolic));
    }
    return List.copyOf(infos);
  }

  @Override
  public String backendName() {
    return "onnxruntime-cpu";
  }

  /**
   * 16 rows: all-MiniLM-L6-v2 over 1,200 length-sorted texts on 2 cores embedded 230 texts/s in
   * runs of 16 (and of 8 or 12), 214 in runs of 32, 202 of 64 and 179 of 128; a run's activations
   * stay in cache.
   */
  @Override
  public int preferredRunRows(int maxRows) {
    return Math.min(CPU_RUN_ROWS, maxRows);
  }

  private static final int CPU_RUN_ROWS = 16;

  @Override
  public String deviceDescription() {
    return "CPU, " + intraOpThreads + " threads";
  }

  @Override
  public List<TensorInfo> inputs() {
    return inputs;
  }

  @Override
  public List<TensorInfo> outputs() {
    return outputs;
  }

  @Override
  public Map<String, Tensor> run(Map<String, Tensor> feed) {
    gate.enter();
    try {
      return runInside(feed);
    } finally {
      gate.exit();
    }
  }

  private Map<String, Tensor> runInside(Map<String, Tensor> feed) {
    int n = feed.size();
    BytePointer[] names = new BytePointer[n];
    int k = 0;
    for (String name : feed.keySet()) {
      names[k++] = new BytePointer(name);
    }
    try (PointerPointer<BytePointer> inputNames = new PointerPointer<>(names);
        Value inputValues = new Value(n)) {
      int i = 0;
      for (Map.Entry<String, Tensor> e : feed.entrySet()) {
        Tensor t = e.getValue();
        long[] shape = t.shape();
        Value v =
            Value.CreateTensor(
                cpuMemory.asOrtMemoryInfo(),
                t.pointer().position(0),
                t.byteSize(),
                shape,
                shape.length,
                OrtTypes.toOnnx(t.dtype()));
        inputValues.position(i).put(v);
        v.close();
        i++;
      }
      inputValues.position(0);
      ValueVector results;
      try {
        results = session.Run(runOptions, inputNames, inputValues, n, outputNames, outputs.size());
      } catch (RuntimeException ex) {
        if (gate.closing()) {
          throw gate.cutShort(); // close set the terminate flag
        }
        throw new BackendException("ONNX Runtime run failed: " + ex.getMessage(), ex);
      }
      return takeOutputs(results);
    }
  }

  /** Moves each result out of the vector so that every output tensor owns its own value. */
  private Map<String, Tensor> takeOutputs(ValueVector results) {
    Map<String, Tensor> out = new LinkedHashMap<>();
    try {
      for (int i = 0; i < outputs.size(); i++) {
        Value owned = new Value();
        owned.put(results.get(i));
        TensorTypeAndShapeInfo info = owned.GetTensorTypeAndShapeInfo();
        long[] shape = info.GetShape().get();
        String name = outputs.get(i).name();
        out.put(
            name,
            Tensor.wrapNative(
                owned.GetTensorMutableRawData(),
                OrtTypes.fromOnnx(info.GetElementType(), name),
                shape,
                owned::close));
        info.close();
      }
    } finally {
      results.close();
    }
    return out;
  }

  /**
   * Turns new runs away, waits for those inside (up to {@link #CLOSE_WAIT}), then asks ONNX Runtime
   * to terminate the rest; freeing the session under a running call would crash the JVM, so a call
   * that still does not return leaves the session's memory unfreed, with a warning.
   */
  @Override
  public void close() {
    if (!gate.beginClose()) {
      return;
    }
    if (!gate.awaitIdle(CLOSE_WAIT)) {
      runOptions.SetTerminate();
      if (!gate.awaitIdle(CLOSE_WAIT)) {
        LOG.warn(
            "{} run(s) still inside ONNX Runtime after terminate; the session is not freed",
            gate.inside());
        return;
      }
    }
    outputNames.close();
    runOptions.close();
    cpuMemory.close();
    session.close();
    options.close();
  }
}
