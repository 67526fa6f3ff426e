package io.kiln.session;

import io.kiln.Backend;
import io.kiln.BenchmarkResult;
import io.kiln.Device;
import io.kiln.InvalidInputException;
import io.kiln.KilnException;
import io.kiln.ModelException;
import io.kiln.Precision;
import io.kiln.Tensor;
import io.kiln.TensorInfo;
import io.kiln.engine.Backends;
import io.kiln.engine.Engine;
import io.kiln.engine.EngineOptions;
import io.kiln.engine.EngineProvider;
import io.kiln.engine.PrecisionGraph;
import io.kiln.execution.batching.BatcherStats;
import io.kiln.execution.batching.DynamicBatcher;
import io.kiln.execution.batching.ListBatcher;
import io.kiln.execution.batching.MergedRun;
import io.kiln.model.ModelSource;
import io.kiln.model.onnx.IndexRanges;
import io.kiln.model.onnx.OnnxModel;
import io.kiln.precision.PrecisionPipeline;
import io.kiln.util.CallGate;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A model compiled for one backend, ready to run. Build one with {@link #builder(Path)}; close it
 * to free its native resources. {@link #infer} may be called from several threads at once.
 */
public final class Session implements AutoCloseable {
  /** How long close waits for the calls inside before it cuts them short. */
  static final Duration CLOSE_WAIT = Duration.ofSeconds(30);

  private static final Logger LOG = LoggerFactory.getLogger(Session.class);

  private final Builder options;
  private final ModelSource model;
  private final Engine engine;
  private final InputValidator validator;
  private final ListBatcher batcher;
  private final DynamicBatcher concurrentBatcher; // null when dynamic batching is off
  private final java.util.concurrent.atomic.AtomicInteger inFlight =
      new java.util.concurrent.atomic.AtomicInteger();
  private final CallGate gate = new CallGate("session");
  private final IndexRanges ranges;

  private Session(Builder options, ModelSource model, Engine engine, IndexRanges ranges) {
    this.options = options;
    this.model = model;
    this.engine = engine;
    this.ranges = ranges;
    this.validator = new InputValidator(engine.inputs(), options.checkFinite, ranges);
    this.batcher =
        new ListBatcher(
            engine.inputs(), engine.outputs(), options.maxBatchSize, options.sequenceBucket);
    this.concurrentBatcher =
        mergesConcurrentCalls(options, engine)
            ? new DynamicBatcher(engine, options.maxBatchSize, options.maxWaitMicros)
            : null;
  }

  public static Builder builder(Path onnxFile) {
    return new Builder(() -> ModelSource.of(onnxFile));
  }

  public static Builder builder(byte[] onnxBytes) {
    return new Builder(() -> ModelSource.of("model bytes", onnxBytes));
  }

  public static Builder builder(ModelSource model) {
    return new Builder(() -> model);
  }

  /** A model packaged on the classpath, such as {@code /models/encoder.onnx}. */
  public static Builder builderFromResource(String resource) {
    return new Builder(() -> ModelSource.ofResource(resource));
  }

  public List<TensorInfo> inputs() {
    return engine.inputs();
  }

  public List<TensorInfo> outputs() {
    return engine.outputs();
  }

  /** The backend that runs this session, such as {@code onnxruntime-cpu} or {@code tensorrt}. */
  public String backendName() {
    return engine.backendName();
  }

  public String deviceDescription() {
    return engine.deviceDescription();
  }

  /** Whether runs execute off the host's cores (see {@link Engine#computesOffHost}). */
  public boolean computesOffHost() {
    return engine.computesOffHost();
  }

  /** What the model's integer inputs index, as learned from its graph; inputs are held to it. */
  public IndexRanges indexRanges() {
    return ranges;
  }

  public Precision precision() {
    return options.precision;
  }

  /**
   * Whether a row's result can depend on the other rows of its batch: dynamic quantization
   * (DynamicQuantizeLinear) takes one scale over the whole tensor, padding included, so such a
   * model gives each text its exact result only when run alone.
   */
  public boolean rowsCoupled() {
    try {
      return OnnxModel.of(model).nodes().stream()
          .anyMatch(n -> n.opType().equals("DynamicQuantizeLinear"));
    } catch (RuntimeException e) {
      LOG.debug("cannot read the graph of {}: {}", model.name(), e.toString());
      return false;
    }
  }

  /** Whether this session was built as a KV-cache decoder. */
  public boolean kvCache() {
    return options.kvCache;
  }

  /**
   * Rows per run for callers that split their work into runs (an embedder over many texts): the
   * backend's measured best, at most {@link #maxBatchSize()}.
   */
  public int preferredBatchSize() {
    return engine.preferredRunRows(maxBatchSize());
  }

  public int maxBatchSize() {
    return options.maxBatchSize;
  }

  /**
   * Runs the model once on inputs that already carry their batch axis. With dynamic batching on,
   * calls from other threads that overlap this one may share its engine run; each caller gets only
   * its own rows back.
   */
  public Result infer(Map<String, Tensor> inputs) {
    gate.enter();
    try {
      return inferInside(inputs);
    } finally {
      gate.exit();
    }
  }

  private Result inferInside(Map<String, Tensor> inputs) {
    validator.validate(inputs);
    Map<String, Tensor> feed = orderedInputs(inputs);
    if (concurrentBatcher == null) {
      return new Result(engine.run(feed));
    }
    // A call with no other in flight runs on its own thread, at the unbatched latency; calls that
    // overlap running ones go to the batcher, which merges them.
    try {
      return new Result(
          inFlight.incrementAndGet() == 1 ? engine.run(feed) : concurrentBatcher.infer(feed));
    } finally {
      inFlight.decrementAndGet();
    }
  }

  /** Counters of the batcher that merges concurrent {@link #infer} calls (zeros when off). */
  public BatcherStats concurrentBatchingStats() {
    return concurrentBatcher != null ? concurrentBatcher.stats() : new BatcherStats(0, 0, 0, 0);
  }

  /**
   * Runs many requests, batching those of similar sequence length together (padded with the
   * attention mask) up to the maximum batch size, and returns one result per request, in order.
   */
  public List<Result> inferBatch(List<Map<String, Tensor>> requests) {
    gate.enter();
    try {
      return inferBatchInside(requests);
    } finally {
      gate.exit();
    }
  }

  private List<Result> inferBatchInside(List<Map<String, Tensor>> requests) {
    if (requests == null || requests.isEmpty()) {
      throw new InvalidInputException("empty batch: inferBatch needs at least one request");
    }
    for (int i = 0; i < requests.size(); i++) {
      try {
        validator.validate(requests.get(i));
      } catch (InvalidInputException e) {
        throw new InvalidInputException("request " + i + ": " + e.getMessage());
      }
    }
    if (Boolean.FALSE.equals(options.dynamicBatching)) {
      List<Result> out = new ArrayList<>();
      for (Map<String, Tensor> r : requests) {
        out.add(new Result(engine.run(orderedInputs(r))));
      }
      return out;
    }
    Result[] results = new Result[requests.size()];
    for (List<Integer> group : batcher.plan(requests)) {
      List<Map<String, Tensor>> feeds = new ArrayList<>();
      for (int i : group) {
        feeds.add(orderedInputs(requests.get(i)));
      }
      List<Map<String, Tensor>> outputs = MergedRun.run(engine, feeds, batcher.canPad());
      for (int k = 0; k < group.size(); k++) {
        results[group.get(k)] = new Result(outputs.get(k));
      }
    }
    return Arrays.asList(results);
  }

  /**
   * Times {@link #infer} on fixed inputs: {@code warmup} untimed runs, then runs until {@code
   * iterations} are done or {@code maxTime} has passed (whichever comes first, at least one).
   */
  public BenchmarkResult benchmark(
      Map<String, Tensor> inputs, int warmup, int iterations, Duration maxTime) {
    gate.enter();
    try {
      return benchmarkInside(inputs, warmup, iterations, maxTime);
    } finally {
      gate.exit();
    }
  }

  private BenchmarkResult benchmarkInside(
      Map<String, Tensor> inputs, int warmup, int iterations, Duration maxTime) {
    if (warmup < 0 || iterations < 1) {
      throw new InvalidInputException("benchmark needs warmup >= 0 and iterations >= 1");
    }
    validator.validate(inputs);
    Map<String, Tensor> feed = orderedInputs(inputs);
    for (int i = 0; i < warmup; i++) {
      engine.run(feed).values().forEach(Tensor::close);
    }
    long batch = inputs.get(engine.inputs().get(0).name()).dim(0);
    long[] samples =
        io.kiln.util.Stopwatch.sample(
            () -> engine.run(feed).values().forEach(Tensor::close), iterations, maxTime);
    return new BenchmarkResult((int) batch, samples);
  }

  /**
   * Writes the ONNX model exactly as this session runs it (after any precision conversion). A model
   * stored with external data gets its data files copied beside {@code file}, at the same relative
   * locations, so the export is complete.
   */
  public void exportOnnx(Path file) {
    try {
      Path target = file.toAbsolutePath();
      Files.createDirectories(target.getParent());
      Files.write(target, model.bytes());
      if (model.path().isPresent()) {
        Path sourceDir = model.path().get().toAbsolutePath().getParent();
        for (String location : OnnxModel.externalDataLocations(model.bytes())) {
          Path copy = target.resolveSibling(location);
          Files.createDirectories(copy.getParent());
          Files.copy(sourceDir.resolve(location), copy, StandardCopyOption.REPLACE_EXISTING);
        }
      }
    } catch (IOException e) {
      throw new KilnException("cannot write " + file + ": " + e.getMessage(), e);
    }
  }

  /** Drops per-shape state the backend keeps (captured graphs, bound buffers). */
  public void clearCache() {
    gate.enter();
    try {
      engine.clearCache();
    } finally {
      gate.exit();
    }
  }

  /**
   * Turns new calls away with a {@link io.kiln.ClosedException}, waits for the calls inside (up to
   * {@link #CLOSE_WAIT}), fails those still queued for a merged run, and closes the engine, which
   * cuts short any run still inside it before it frees native memory.
   */
  @Override
  public void close() {
    if (!gate.beginClose()) {
      return;
    }
    gate.awaitIdle(CLOSE_WAIT);
    if (concurrentBatcher != null) {
      concurrentBatcher.close();
    }
    engine.close();
  }

  /** Merging concurrent calls is on where the engine measured a gain, unless the builder says. */
  private static boolean mergesConcurrentCalls(Builder options, Engine engine) {
    return options.dynamicBatching != null
        ? options.dynamicBatching
        : engine.mergesConcurrentCalls();
  }

  /** The inputs in the model's declared order, which backends bind positionally. */
  private Map<String, Tensor> orderedInputs(Map<String, Tensor> inputs) {
    Map<String, Tensor> ordered = new LinkedHashMap<>();
    for (TensorInfo info : engine.inputs()) {
      ordered.put(info.name(), inputs.get(info.name()));
    }
    return ordered;
  }

  /** Named output tensors of one run; closing it frees them all. */
  public static final class Result implements AutoCloseable, Iterable<Map.Entry<String, Tensor>> {
    private final Map<String, Tensor> outputs;

    Result(Map<String, Tensor> outputs) {
      this.outputs = Collections.unmodifiableMap(outputs);
    }

    public Tensor get(String name) {
      Tensor t = outputs.get(name);
      if (t == null) {
        throw new InvalidInputException(
            "no output named '" + name + "'; outputs are " + outputs.keySet());
      }
      return t;
    }

    /** The first (often the only) output. */
    public Tensor first() {
      return outputs.values().iterator().next();
    }

    public Map<String, Tensor> asMap() {
      return outputs;
    }

    @Override
    public Iterator<Map.Entry<String, Tensor>> iterator() {
      return outputs.entrySet().iterator();
    }

    @Override
    public void close() {
      outputs.values().forEach(Tensor::close);
    }
  }

  /** Options of a session, mirroring the knobs of an inference optimizer. */
  public static final class Builder {
    private final java.util.function.Supplier<ModelSource> model;
    private Device device = Device.AUTO;
    private Precision precision = Precision.FP32;
    private Backend backend = Backend.AUTO;
    private boolean cudaGraphs = true;
    private boolean kvCache;
    private int batchSize = 1;
    private int maxBatchSize = 32;
    private Boolean dynamicBatching; // null: the engine's measured choice
    private long maxWaitMicros = 1000;
    private int intraOpThreads = Runtime.getRuntime().availableProcessors();
    private int sequenceBucket = 32;
    private boolean checkFinite = true;
    private Path cacheDir = Path.of(System.getProperty("user.home"), ".cache", "kiln");
    private io.kiln.precision.PrecisionOptions precisionOptions =
        io.kiln.precision.PrecisionOptions.defaults();

    private Builder(java.util.function.Supplier<ModelSource> model) {
      this.model = model;
    }

    public Builder device(Device device) {
      this.device = java.util.Objects.requireNonNull(device);
      return this;
    }

    public Builder precision(Precision precision) {
      this.precision = java.util.Objects.requireNonNull(precision);
      return this;
    }

    public Builder backend(Backend backend) {
      this.backend = java.util.Objects.requireNonNull(backend);
      return this;
    }

    public Builder cudaGraphs(boolean on) {
      this.cudaGraphs = on;
      return this;
    }

    /**
     * Declares a decoder that keeps a KV cache between steps: the model must take {@code
     * past_key_values.N.key/value} and return {@code present.N.key/value}, checked at build.
     */
    public Builder kvCache(boolean on) {
      this.kvCache = on;
      return this;
    }

    /** The batch size the engine is tuned for. */
    public Builder batchSize(int n) {
      this.batchSize = positive("batchSize", n);
      return this;
    }

    public Builder maxBatchSize(int n) {
      this.maxBatchSize = positive("maxBatchSize", n);
      return this;
    }

    /**
     * Whether {@link Session#inferBatch} and concurrent {@link Session#infer} calls merge requests
     * into shared runs. By default {@code inferBatch} always merges, and concurrent {@code infer}
     * calls merge only on engines where merging was measured to raise throughput (TensorRT, not
     * ONNX Runtime on the CPU, where it halved calls per second at 16 threads).
     */
    public Builder dynamicBatching(boolean on) {
      this.dynamicBatching = on;
      return this;
    }

    /**
     * How long a merged run may wait for more concurrent {@link Session#infer} calls after the
     * first arrives (default 1000 µs). It only waits while other callers are inside infer, so a
     * lone caller never waits.
     */
    public Builder maxWaitMicros(long micros) {
      if (micros < 0) {
        throw new InvalidInputException("maxWaitMicros must be >= 0, got " + micros);
      }
      this.maxWaitMicros = micros;
      return this;
    }

    /** Compute threads for CPU backends (default: all cores). */
    public Builder intraOpThreads(int n) {
      this.intraOpThreads = positive("intraOpThreads", n);
      return this;
    }

    /** Requests whose lengths round up to the same multiple of this share a padded batch. */
    public Builder sequenceBucket(int n) {
      this.sequenceBucket = positive("sequenceBucket", n);
      return this;
    }

    /** Reject float inputs that hold NaN or infinity (default on). */
    public Builder checkFinite(boolean on) {
      this.checkFinite = on;
      return this;
    }

    /** How FP16/INT8 graphs are made: calibration data, cache, quantization settings. */
    public Builder precisionOptions(io.kiln.precision.PrecisionOptions options) {
      this.precisionOptions = java.util.Objects.requireNonNull(options);
      return this;
    }

    /** Where compiled engines and converted models are cached. */
    public Builder cacheDir(Path dir) {
      this.cacheDir = java.util.Objects.requireNonNull(dir);
      return this;
    }

    public Session build() {
      if (batchSize > maxBatchSize) {
        throw new InvalidInputException(
            "batchSize " + batchSize + " exceeds maxBatchSize " + maxBatchSize);
      }
      ModelSource source = model.get();
      EngineProvider provider = Backends.choose(backend, device);
      IndexRanges ranges = indexRanges(source);
      PrecisionGraph graph = provider.graphFor(precision);
      source = PrecisionPipeline.apply(source, graph, precisionOptions, cacheDir);
      EngineOptions engineOptions =
          new EngineOptions(graph, cudaGraphs, batchSize, maxBatchSize, intraOpThreads, cacheDir);
      Engine engine = provider.open(source, engineOptions);
      if (kvCache) {
        try {
          checkKvCacheInterface(engine, source.name());
        } catch (ModelException e) {
          engine.close();
          throw e;
        }
      }
      return new Session(this, source, engine, ranges);
    }

    /**
     * The id and position ranges of the original graph (a quantized one may hide its tables behind
     * DequantizeLinear). A model whose graph cannot be read here is left to the engine.
     */
    private static IndexRanges indexRanges(ModelSource source) {
      try {
        return IndexRanges.of(OnnxModel.of(source));
      } catch (RuntimeException e) {
        LOG.debug("no index ranges for {}: {}", source.name(), e.toString());
        return IndexRanges.none();
      }
    }

    /** A KV-cache decoder takes the past keys and values in and gives the present ones out. */
    private static void checkKvCacheInterface(Engine engine, String model) {
      boolean past =
          engine.inputs().stream().anyMatch(i -> i.name().startsWith("past_key_values."));
      boolean present = engine.outputs().stream().anyMatch(o -> o.name().startsWith("present."));
      if (!past || !present) {
        throw new ModelException(
            model
                + " is not a decoder with a KV cache: kvCache(true) needs past_key_values.N.key/value"
                + " inputs and present.N.key/value outputs, and it has "
                + (past ? "no present.* outputs" : "no past_key_values.* inputs"));
      }
    }

    private static int positive(String what, int n) {
      if (n < 1) {
        throw new InvalidInputException(what + " must be >= 1, got " + n);
      }
      return n;
    }
  }
}
