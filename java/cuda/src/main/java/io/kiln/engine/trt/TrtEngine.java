package io.kiln.engine.trt;

import static org.bytedeco.tensorrt.global.nvinfer.*;

import io.kiln.BackendException;
import io.kiln.DType;
import io.kiln.InvalidInputException;
import io.kiln.Tensor;
import io.kiln.TensorInfo;
import io.kiln.cuda.Bucket;
import io.kiln.cuda.Cuda;
import io.kiln.cuda.GraphStats;
import io.kiln.cuda.ShapeBuckets;
import io.kiln.engine.Engine;
import io.kiln.util.CallGate;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.tensorrt.nvinfer.ICudaEngine;
import org.bytedeco.tensorrt.nvinfer.IEngineInspector;
import org.bytedeco.tensorrt.nvinfer.IRuntime;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A deserialized TensorRT engine. Requests are padded up to a bucket (batch, sequence), run on one
 * of {@code streams} execution slots (by CUDA-graph replay or plain enqueue) and cut back to their
 * own rows and length. Thread-safe: callers beyond the number of slots wait for a free one.
 *
 * <p>Native lifetime is explicit: {@link #close()} frees every context, buffer, graph, the engine
 * and the runtime, in that order.
 */
public final class TrtEngine implements Engine {
  /** How long close waits for the runs inside. */
  static final Duration CLOSE_WAIT = Duration.ofSeconds(30);

  private static final Logger LOG = LoggerFactory.getLogger(TrtEngine.class);

  private IRuntime runtime;
  private ICudaEngine engine;
  private final List<IoTensor> tensors = new ArrayList<>();
  private final List<ShapeProfile> profiles = new ArrayList<>();
  private final ShapeBuckets buckets;
  private final ProfileSelector selector;
  private final RuntimeOptions options;
  private final List<ExecutionSlot> slots = new ArrayList<>();
  private final BlockingQueue<ExecutionSlot> free;
  private final String device;
  private final PinnedPool outputs;
  private final EngineMetadata metadata;
  private final CallGate gate = new CallGate("TensorRT engine");

  private TrtEngine(byte[] plan, RuntimeOptions options, EngineMetadata metadata) {
    Cuda.requireAvailable();
    this.options = options;
    this.metadata = metadata;
    // Enough idle output buffers per bucket for every slot's caller to hold one result.
    this.outputs = PinnedPool.cudaHost(2 * options.streams() + 2, 2L << 30);
    this.device = Cuda.deviceName() + " (sm " + Cuda.computeCapability() + ")";
    try {
      runtime = NativeDelete.own(createInferRuntime(TrtLogger.get()), IRuntime::new);
      if (runtime == null || runtime.isNull()) {
        throw new BackendException("createInferRuntime failed");
      }
      BytePointer bytes = new BytePointer(plan);
      try {
        engine =
            NativeDelete.own(runtime.deserializeCudaEngine(bytes, plan.length), ICudaEngine::new);
      } finally {
        bytes.deallocate();
      }
      if (engine == null || engine.isNull()) {
        throw new BackendException(
            "TensorRT could not deserialize the plan (other TensorRT version or GPU?); see its log");
      }
      readTensors();
      readProfiles();
      this.buckets = options.buckets() != null ? options.buckets() : derivedBuckets(profiles);
      this.selector = new ProfileSelector(profiles, buckets);
      free = new ArrayBlockingQueue<>(options.streams());
      for (int i = 0; i < options.streams(); i++) {
        ExecutionSlot s = new ExecutionSlot(engine, options.maxGraphs());
        slots.add(s);
        free.add(s);
      }
      for (Bucket b : options.eagerCapture()) {
        prepare(b);
      }
    } catch (RuntimeException e) {
      close();
      throw e;
    }
  }

  /** Loads plan bytes (already verified by the caller). */
  public static TrtEngine load(byte[] plan, RuntimeOptions options) {
    return new TrtEngine(plan, options, null);
  }

  /** Loads a plan file after checking its sidecar: size, sha256, GPU and versions. */
  public static TrtEngine load(Path planFile, RuntimeOptions options) {
    PlanFiles.Verified v = PlanFiles.readVerified(planFile, EngineTarget.current());
    return new TrtEngine(v.plan(), options, v.metadata());
  }

  /** Loads from an engine cache entry. */
  public static TrtEngine load(EngineCache.Entry entry, RuntimeOptions options) {
    return new TrtEngine(entry.plan(), options, entry.metadata());
  }

  private void readTensors() {
    for (int i = 0; i < engine.getNbIOTensors(); i++) {
      String name = engine.getIOTensorName(i);
      boolean input = engine.getTensorIOMode(name).intern() == TensorIOMode.kINPUT;
      DType dtype = dtypeOf(engine.getTensorDataType(name).intern(), name);
      long[] dims = TrtEngineBuilder.dimsOf(engine.getTensorShape(name));
      tensors.add(new IoTensor(name, dtype, dims, input));
    }
  }

  private void readProfiles() {
    IoTensor probe = null;
    for (IoTensor t : tensors) {
      if (t.input() && t.hasSeqAxis()) {
        probe = t;
        break;
      }
    }
    if (probe == null) {
      for (IoTensor t : tensors) {
        if (t.input()) {
          probe = t;
          break;
        }
      }
    }
    if (probe == null) {
      throw new BackendException("engine has no inputs");
    }
    for (int p = 0; p < engine.getNbOptimizationProfiles(); p++) {
      long[] min =
          TrtEngineBuilder.dimsOf(engine.getProfileShape(probe.name(), p, OptProfileSelector.kMIN));
      long[] opt =
          TrtEngineBuilder.dimsOf(engine.getProfileShape(probe.name(), p, OptProfileSelector.kOPT));
      long[] max =
          TrtEngineBuilder.dimsOf(engine.getProfileShape(probe.name(), p, OptProfileSelector.kMAX));
      DimRange batch = new DimRange(min[0], opt[0], max[0]);
      DimRange seq = probe.hasSeqAxis() ? new DimRange(min[1], opt[1], max[1]) : DimRange.fixed(1);
      profiles.add(new ShapeProfile(batch, seq));
    }
  }

  /** Static profiles give their own shapes as buckets; dynamic ones the standard list. */
  static ShapeBuckets derivedBuckets(List<ShapeProfile> profiles) {
    return ProfileSelector.derivedBuckets(profiles);
  }

  /** The smallest bucket holding (batch, seq) that some profile covers. */
  Bucket bucketFor(long batch, long seq) {
    return selector.bucketFor(batch, seq);
  }

  int profileFor(Bucket b) {
    return selector.profileFor(b);
  }

  @Override
  public String backendName() {
    return "tensorrt";
  }

  @Override
  public boolean computesOffHost() {
    return true;
  }

  @Override
  public String deviceDescription() {
    return device;
  }

  @Override
  public List<TensorInfo> inputs() {
    return tensors.stream().filter(IoTensor::input).map(IoTensor::info).toList();
  }

  @Override
  public List<TensorInfo> outputs() {
    return tensors.stream().filter(t -> !t.input()).map(IoTensor::info).toList();
  }

  public List<ShapeProfile> profiles() {
    return List.copyOf(profiles);
  }

  public ShapeBuckets buckets() {
    return buckets;
  }

  /** The sidecar metadata of the plan, when it was loaded from a file or cache. */
  public EngineMetadata metadata() {
    return metadata;
  }

  @Override
  public Map<String, Tensor> run(Map<String, Tensor> inputs) {
    return run(inputs, options.cudaGraphs());
  }

  /**
   * Runs once, with graphs on or off for this call (the bench and tests compare the two). The
   * outputs live in the engine's pinned buffers: closing them gives the buffers back.
   */
  public Map<String, Tensor> run(Map<String, Tensor> inputs, boolean useGraph) {
    gate.enter();
    try {
      long[] bs = validate(inputs);
      Bucket bucket = bucketFor(bs[0], bs[1]);
      ExecutionSlot slot = acquire();
      try {
        BucketContext ctx = slot.context(engine, tensors, bucket, profileFor(bucket));
        Padding.pack(inputs, ctx.buffers.values(), bs[0], bs[1]);
        return ctx.execute(computeStep(slot, ctx, bucket, useGraph), bs[0], bs[1], outputs);
      } finally {
        free.add(slot);
      }
    } finally {
      gate.exit();
    }
  }

  /** Merged runs were measured to raise throughput on TensorRT (larger batches per launch). */
  @Override
  public boolean mergesConcurrentCalls() {
    return true;
  }

  /** The model's compute for one bucket: a graph replay (captured on first use) or an enqueue. */
  private static Runnable computeStep(
      ExecutionSlot slot, BucketContext ctx, Bucket bucket, boolean useGraph) {
    return useGraph ? () -> slot.graphs.run(bucket, ctx::capture, ctx::enqueue) : ctx::enqueue;
  }

  /**
   * Times {@code iterations} runs of the compute alone for the bucket of (batch, seq) (no host
   * copies), with a graph or plain enqueue, using the inputs last copied for that bucket; returns
   * microseconds per run.
   */
  public double timeDeviceOnly(Map<String, Tensor> inputs, boolean useGraph, int iterations) {
    gate.enter();
    try {
      return timeInside(inputs, useGraph, iterations);
    } finally {
      gate.exit();
    }
  }

  private double timeInside(Map<String, Tensor> inputs, boolean useGraph, int iterations) {
    long[] bs = validate(inputs);
    Bucket bucket = bucketFor(bs[0], bs[1]);
    ExecutionSlot slot = acquire();
    try {
      BucketContext ctx = slot.context(engine, tensors, bucket, profileFor(bucket));
      Runnable once = computeStep(slot, ctx, bucket, useGraph);
      once.run();
      Cuda.check(org.bytedeco.cuda.global.cudart.cudaStreamSynchronize(slot.stream), "sync");
      long t0 = System.nanoTime();
      for (int i = 0; i < iterations; i++) {
        once.run();
      }
      Cuda.check(org.bytedeco.cuda.global.cudart.cudaStreamSynchronize(slot.stream), "sync");
      return (System.nanoTime() - t0) / 1e3 / iterations;
    } finally {
      free.add(slot);
    }
  }

  /** Captures the graph of {@code bucket} on every slot now. */
  public void prepare(Bucket bucket) {
    if (profileFor(bucket) < 0) {
      throw new InvalidInputException("no optimization profile holds bucket " + bucket);
    }
    for (ExecutionSlot s : slots) {
      BucketContext ctx = s.context(engine, tensors, bucket, profileFor(bucket));
      s.graphs.prepare(bucket, ctx::capture);
    }
  }

  /**
   * TensorRT's description of the engine's layers as JSON: each layer's kernel, formats and fused
   * operations when the plan was built with detailed layers, names only otherwise.
   */
  public synchronized String layerInformation() {
    gate.enter();
    try {
      return layerInformationInside();
    } finally {
      gate.exit();
    }
  }

  private String layerInformationInside() {
    IEngineInspector inspector =
        NativeDelete.own(engine.createEngineInspector(), IEngineInspector::new);
    if (inspector == null || inspector.isNull()) {
      throw new BackendException("TensorRT could not create an engine inspector");
    }
    try {
      return inspector.getEngineInformation(LayerInformationFormat.kJSON);
    } finally {
      NativeDelete.delete(inspector);
    }
  }

  /** Graph counters summed over slots. */
  public GraphStats graphStats() {
    GraphStats total = GraphStats.empty();
    for (ExecutionSlot s : slots) {
      total = total.plus(s.stats());
    }
    return total;
  }

  /** Device memory held by buffers and scratch (weights excluded). */
  public long bufferBytes() {
    long n = 0;
    for (ExecutionSlot s : slots) {
      n += s.deviceBytes();
    }
    return n;
  }

  @Override
  public void clearCache() {
    for (ExecutionSlot s : slots) {
      s.clearGraphs();
    }
  }

  private long[] validate(Map<String, Tensor> inputs) {
    long batch = -1;
    long seq = 1;
    for (IoTensor t : tensors) {
      if (!t.input()) {
        continue;
      }
      Tensor v = inputs.get(t.name());
      if (v == null) {
        throw new InvalidInputException("missing input '" + t.name() + "'");
      }
      boolean narrowable = v.dtype() == DType.I64 && t.dtype() == DType.I32;
      if (v.dtype() != t.dtype() && !narrowable) {
        throw new InvalidInputException(
            "input '" + t.name() + "' must be " + t.dtype() + ", got " + v.dtype());
      }
      if (v.rank() != t.dims().length) {
        throw new InvalidInputException(
            "input '"
                + t.name()
                + "' must have rank "
                + t.dims().length
                + ", got "
                + Arrays.toString(v.shape()));
      }
      for (int a = 0; a < v.rank(); a++) {
        if (t.dims()[a] >= 0 && t.dims()[a] != v.dim(a)) {
          throw new InvalidInputException(
              "input '"
                  + t.name()
                  + "' axis "
                  + a
                  + " must be "
                  + t.dims()[a]
                  + ", got "
                  + v.dim(a));
        }
      }
      if (batch < 0) {
        batch = v.dim(0);
      } else if (v.dim(0) != batch) {
        throw new InvalidInputException("inputs disagree on the batch size");
      }
      if (t.hasSeqAxis()) {
        if (seq != 1 && v.dim(1) != seq) {
          throw new InvalidInputException("inputs disagree on the sequence length");
        }
        seq = v.dim(1);
      }
    }
    for (String name : inputs.keySet()) {
      if (tensors.stream().noneMatch(t -> t.input() && t.name().equals(name))) {
        throw new InvalidInputException("unknown input '" + name + "'");
      }
    }
    return new long[] {batch, seq};
  }

  private ExecutionSlot acquire() {
    try {
      return free.take();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new BackendException("interrupted while waiting for an execution slot");
    }
  }

  static DType dtypeOf(DataType t, String name) {
    return switch (t) {
      case kFLOAT -> DType.F32;
      case kHALF -> DType.F16;
      case kBF16 -> DType.BF16;
      case kINT8 -> DType.I8;
      case kINT32 -> DType.I32;
      case kINT64 -> DType.I64;
      case kBOOL -> DType.BOOL;
      default -> throw new BackendException("tensor " + name + " has unsupported type " + t);
    };
  }

  /**
   * Turns new runs away and waits for those inside (up to {@link #CLOSE_WAIT}; enqueued device work
   * cannot be cut short), then frees every context, buffer, graph and the engine. A run that still
   * does not return leaves them unfreed, with a warning, rather than freeing under it.
   */
  @Override
  public void close() {
    if (!gate.beginClose()) {
      return;
    }
    if (!gate.awaitIdle(CLOSE_WAIT)) {
      LOG.warn("{} run(s) still inside the TensorRT engine; it is not freed", gate.inside());
      return;
    }
    freeNative();
  }

  private synchronized void freeNative() {
    for (ExecutionSlot s : slots) {
      s.close();
    }
    slots.clear();
    outputs.close();
    NativeDelete.delete(engine);
    NativeDelete.delete(runtime);
    LOG.debug("TensorRT engine closed");
  }
}
