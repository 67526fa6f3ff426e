package io.kiln.engine.trt;

import static org.bytedeco.tensorrt.global.nvinfer.*;

import io.kiln.BackendException;
import io.kiln.ModelException;
import io.kiln.cuda.Cuda;
import io.kiln.model.ModelSource;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.tensorrt.global.nvonnxparser;
import org.bytedeco.tensorrt.nvinfer.Dims64;
import org.bytedeco.tensorrt.nvinfer.IBuilder;
import org.bytedeco.tensorrt.nvinfer.IBuilderConfig;
import org.bytedeco.tensorrt.nvinfer.IHostMemory;
import org.bytedeco.tensorrt.nvinfer.INetworkDefinition;
import org.bytedeco.tensorrt.nvinfer.IOptimizationProfile;
import org.bytedeco.tensorrt.nvinfer.ITensor;
import org.bytedeco.tensorrt.nvinfer.ITimingCache;
import org.bytedeco.tensorrt.nvonnxparser.IParser;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Builds TensorRT plans from ONNX: parses the model, adds one optimization profile per {@link
 * ShapeProfile}, sets the precision (strongly typed from the graph, or through builder flags and an
 * optional entropy calibrator), reuses and updates a timing cache, and reports progress.
 */
public final class TrtEngineBuilder {
  private static final Logger LOG = LoggerFactory.getLogger(TrtEngineBuilder.class);
  private final Consumer<String> progress;

  /**
   * Progress lines go to {@code progress} (such as {@code System.err::println}) every few seconds.
   */
  public TrtEngineBuilder(Consumer<String> progress) {
    this.progress = progress;
  }

  public TrtEngineBuilder() {
    this(LOG::info);
  }

  /** Result of a build: the plan and its sidecar metadata. */
  public record Result(byte[] plan, EngineMetadata metadata) {}

  public Result build(ModelSource model, BuildOptions options) {
    EngineTarget target = EngineTarget.current();
    EngineMetadata expected =
        EngineMetadata.expected(model.sha256(), model.name(), options, target);
    long t0 = System.nanoTime();
    byte[] plan = buildPlan(model, options);
    double seconds = (System.nanoTime() - t0) / 1e9;
    return new Result(plan, expected.withPlan(plan, seconds));
  }

  /** Builds and writes {@code out} plus its sidecar. */
  public Result buildTo(ModelSource model, BuildOptions options, Path out) {
    Result r = build(model, options);
    PlanFiles.write(out, r.plan(), r.metadata());
    return r;
  }

  /** Returns the cached plan for this model and options, building it on a miss. */
  public EngineCache.Entry cached(EngineCache cache, ModelSource model, BuildOptions options) {
    EngineMetadata expected =
        EngineMetadata.expected(model.sha256(), model.name(), options, EngineTarget.current());
    return cache.getOrBuild(
        expected,
        () -> {
          long t0 = System.nanoTime();
          byte[] plan = buildPlan(model, options);
          return new EngineCache.BuiltPlan(plan, (System.nanoTime() - t0) / 1e9);
        });
  }

  @SuppressWarnings("deprecation") // calibrator calls: the implicit INT8 baseline
  byte[] buildPlan(ModelSource model, BuildOptions options) {
    Cuda.requireAvailable();
    TrtLogger logger = TrtLogger.get();
    IBuilder builder = null;
    INetworkDefinition network = null;
    IParser parser = null;
    IBuilderConfig config = null;
    ITimingCache timingCache = null;
    IHostMemory serialized = null;
    EntropyCalibrator calibrator = null;
    BytePointer modelBytes = null;
    try {
      builder = NativeDelete.own(createInferBuilder(logger), IBuilder::new);
      check(builder, "createInferBuilder");
      int flags =
          options.stronglyTyped() ? 1 << NetworkDefinitionCreationFlag.kSTRONGLY_TYPED.value : 0;
      network = NativeDelete.own(builder.createNetworkV2(flags), INetworkDefinition::new);
      check(network, "createNetworkV2");
      // IParser cannot be allocated from Java, so it has no deleter to borrow; it holds host memory
      // only and lives for the length of one build.
      parser = nvonnxparser.createParser(network, logger);
      check(parser, "createParser");
      modelBytes = new BytePointer(model.bytes());
      boolean parsed =
          model.path().isPresent()
              ? parser.parse(modelBytes, model.bytes().length, model.path().get().toString())
              : parser.parse(modelBytes, model.bytes().length);
      if (!parsed) {
        throw new ModelException(
            "TensorRT cannot parse " + model.name() + ": " + parserErrors(parser));
      }
      config = NativeDelete.own(builder.createBuilderConfig(), IBuilderConfig::new);
      check(config, "createBuilderConfig");
      configurePrecision(config, options);
      config.setBuilderOptimizationLevel(options.optLevel());
      if (options.detailedLayers()) {
        config.setProfilingVerbosity(ProfilingVerbosity.kDETAILED);
      }
      if (options.workspaceMiB() > 0) {
        config.setMemoryPoolLimit(MemoryPoolType.kWORKSPACE, options.workspaceMiB() << 20);
      }
      for (ShapeProfile p : options.profiles()) {
        addProfile(builder, config, network, p);
      }
      if (options.calibration() != null) {
        calibrator = new EntropyCalibrator(options.calibration());
        config.setInt8Calibrator(calibrator);
        config.setCalibrationProfile(calibrationProfile(builder, network, options.calibration()));
      }
      timingCache = loadTimingCache(config, options.timingCache());
      if (!config.setTimingCache(timingCache, false)) {
        throw new BackendException("TensorRT refused the timing cache");
      }
      serialized = buildWithTicker(builder, network, config, options);
      byte[] plan = new byte[Math.toIntExact(serialized.size())];
      new BytePointer(serialized.data()).capacity(plan.length).get(plan);
      if (options.timingCache() != null) {
        saveTimingCache(timingCache, options.timingCache());
      }
      return plan;
    } finally {
      NativeDelete.delete(serialized);
      NativeDelete.delete(timingCache);
      NativeDelete.delete(config);
      NativeDelete.delete(network);
      NativeDelete.delete(builder);
      if (calibrator != null) {
        calibrator.close();
      }
      if (modelBytes != null) {
        modelBytes.deallocate();
      }
    }
  }

  @SuppressWarnings("deprecation") // kINT8 and calibrators: the implicit path kept for comparison
  private static void configurePrecision(IBuilderConfig config, BuildOptions options) {
    if (options.stronglyTyped()) {
      return; // types come from the graph; precision flags are not allowed
    }
    switch (options.precision()) {
      case FP32 -> config.clearFlag(BuilderFlag.kTF32); // exact FP32, comparable with ORT
      case FP16 -> config.setFlag(BuilderFlag.kFP16);
      case INT8 -> {
        config.setFlag(BuilderFlag.kFP16);
        config.setFlag(BuilderFlag.kINT8);
      }
    }
  }

  private static void addProfile(
      IBuilder builder, IBuilderConfig config, INetworkDefinition network, ShapeProfile p) {
    IOptimizationProfile profile = builder.createOptimizationProfile();
    for (int i = 0; i < network.getNbInputs(); i++) {
      ITensor input = network.getInput(i);
      String name = input.getName();
      long[] dims = dimsOf(input.getDimensions());
      profile.setDimensions(
          name,
          OptProfileSelector.kMIN,
          dims64(resolve(dims, p.batch().min(), p.seq().min(), name)));
      profile.setDimensions(
          name,
          OptProfileSelector.kOPT,
          dims64(resolve(dims, p.batch().opt(), p.seq().opt(), name)));
      profile.setDimensions(
          name,
          OptProfileSelector.kMAX,
          dims64(resolve(dims, p.batch().max(), p.seq().max(), name)));
    }
    if (!profile.isValid()) {
      throw new ModelException("optimization profile " + p + " is not valid for this model");
    }
    config.addOptimizationProfile(profile);
  }

  private static IOptimizationProfile calibrationProfile(
      IBuilder builder, INetworkDefinition network, CalibrationBatches data) {
    IOptimizationProfile profile = builder.createOptimizationProfile();
    var first = data.batches().get(0);
    for (int i = 0; i < network.getNbInputs(); i++) {
      String name = network.getInput(i).getName();
      io.kiln.Tensor t = first.get(name);
      if (t == null) {
        throw new ModelException("calibration data has no input '" + name + "'");
      }
      Dims64 d = dims64(t.shape());
      profile.setDimensions(name, OptProfileSelector.kMIN, d);
      profile.setDimensions(name, OptProfileSelector.kOPT, d);
      profile.setDimensions(name, OptProfileSelector.kMAX, d);
    }
    return profile;
  }

  /** Fills the dynamic axes: axis 0 is the batch, axis 1 the sequence. */
  static long[] resolve(long[] dims, long batch, long seq, String name) {
    long[] out = dims.clone();
    for (int a = 0; a < out.length; a++) {
      if (out[a] < 0) {
        if (a == 0) {
          out[a] = batch;
        } else if (a == 1) {
          out[a] = seq;
        } else {
          throw new ModelException(
              "input "
                  + name
                  + " has a dynamic axis "
                  + a
                  + "; only batch (0) and sequence (1) may be dynamic");
        }
      }
    }
    return out;
  }

  static long[] dimsOf(Dims64 d) {
    long[] out = new long[d.nbDims()];
    for (int i = 0; i < out.length; i++) {
      out[i] = d.d(i);
    }
    return out;
  }

  static Dims64 dims64(long[] dims) {
    Dims64 d = new Dims64();
    d.nbDims(dims.length);
    for (int i = 0; i < dims.length; i++) {
      d.d(i, dims[i]);
    }
    return d;
  }

  private static ITimingCache loadTimingCache(IBuilderConfig config, Path file) {
    byte[] bytes = new byte[0];
    if (file != null && Files.exists(file)) {
      try {
        bytes = Files.readAllBytes(file);
        LOG.info("timing cache {}: {} bytes", file, bytes.length);
      } catch (IOException e) {
        LOG.warn("cannot read timing cache {} ({}); starting empty", file, e.getMessage());
      }
    }
    BytePointer p = new BytePointer(Math.max(1, bytes.length));
    p.put(bytes);
    try {
      ITimingCache cache =
          NativeDelete.own(config.createTimingCache(p, bytes.length), ITimingCache::new);
      if (cache == null || cache.isNull()) {
        LOG.warn("timing cache {} was rejected; starting empty", file);
        cache = NativeDelete.own(config.createTimingCache(p, 0), ITimingCache::new);
      }
      check(cache, "createTimingCache");
      return cache;
    } finally {
      p.deallocate();
    }
  }

  private static void saveTimingCache(ITimingCache cache, Path file) {
    IHostMemory mem = NativeDelete.own(cache.serialize(), IHostMemory::new);
    try {
      check(mem, "ITimingCache.serialize");
      byte[] bytes = new byte[Math.toIntExact(mem.size())];
      new BytePointer(mem.data()).capacity(bytes.length).get(bytes);
      Path parent = file.toAbsolutePath().getParent();
      if (parent != null) {
        Files.createDirectories(parent);
      }
      Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
      Files.write(tmp, bytes);
      Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
      LOG.info("timing cache saved: {} ({} bytes)", file, bytes.length);
    } catch (IOException e) {
      LOG.warn("cannot save timing cache {}: {}", file, e.getMessage());
    } finally {
      NativeDelete.delete(mem);
    }
  }

  private IHostMemory buildWithTicker(
      IBuilder builder, INetworkDefinition network, IBuilderConfig config, BuildOptions options) {
    // bytedeco exposes IProgressMonitor without a constructor, so a ticker reports instead.
    ScheduledExecutorService ticker =
        Executors.newSingleThreadScheduledExecutor(
            r -> {
              Thread t = new Thread(r, "kiln-build-progress");
              t.setDaemon(true);
              return t;
            });
    long t0 = System.nanoTime();
    String what =
        options.precision().label()
            + (options.stronglyTyped() ? " strongly typed" : "")
            + ", "
            + options.profiles().size()
            + " profile(s)";
    progress.accept("building TensorRT engine (" + what + ")...");
    ticker.scheduleAtFixedRate(
        () ->
            progress.accept(
                String.format(
                    "  still building (%s): %.0f s", what, (System.nanoTime() - t0) / 1e9)),
        10,
        10,
        TimeUnit.SECONDS);
    try {
      IHostMemory mem =
          NativeDelete.own(builder.buildSerializedNetwork(network, config), IHostMemory::new);
      if (mem == null || mem.isNull() || mem.size() == 0) {
        throw new BackendException(
            "TensorRT failed to build the engine (" + what + "); see the TensorRT log above");
      }
      progress.accept(String.format("built in %.1f s (%s)", (System.nanoTime() - t0) / 1e9, what));
      return mem;
    } finally {
      ticker.shutdownNow();
    }
  }

  private static String parserErrors(IParser parser) {
    List<String> errors = new ArrayList<>();
    for (int i = 0; i < parser.getNbErrors(); i++) {
      var e = parser.getError(i);
      errors.add("node " + e.node() + " (" + e.nodeOperator() + "): " + e.desc());
    }
    return String.join("; ", errors);
  }

  private static void check(Pointer p, String what) {
    if (p == null || p.isNull()) {
      throw new BackendException("TensorRT " + what + " returned null; see the TensorRT log");
    }
  }
}
