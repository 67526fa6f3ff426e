package io.kiln.engine.trt;

import io.kiln.engine.Engine;
import io.kiln.engine.EngineOptions;
import io.kiln.engine.EngineProvider;
import io.kiln.engine.ModelSource;
import java.util.Optional;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The TensorRT backend for sessions: builds (or takes from the engine cache) a plan with one
 * dynamic profile (batch 1 to the session's maximum, optimum at its batch size; sequence 1 to 512,
 * optimum 128) and runs it with CUDA graphs per bucket when the session asks for them.
 */
public final class TrtProvider implements EngineProvider {
  private static final Logger LOG = LoggerFactory.getLogger(TrtProvider.class);

  @Override
  public String name() {
    return "tensorrt";
  }

  @Override
  public Optional<String> unavailableReason() {
    if (!Cuda.isAvailable()) {
      return Optional.of("no CUDA device or CUDA runtime");
    }
    return TrtLibrary.isAvailable()
        ? Optional.empty()
        : Optional.of("the TensorRT libraries do not load");
  }

  @Override
  public Engine open(ModelSource model, EngineOptions options) {
    int max = Math.max(1, options.maxBatchSize());
    int opt = Math.min(Math.max(1, options.batchSize()), max);
    Precision precision = Precision.parse(options.precision());
    BuildOptions build =
        BuildOptions.builder()
            .precision(precision)
            // INT8 sessions hand over the float16 form of their Q/DQ graph.
            .stronglyTyped(precision == Precision.INT8)
            .profile(new ShapeProfile(new DimRange(1, opt, max), new DimRange(1, 128, 512)))
            .build();
    EngineCache cache =
        options.cacheDir() != null
            ? new EngineCache(options.cacheDir().resolve("engines"))
            : EngineCache.defaultCache();
    EngineCache.Entry entry = new TrtEngineBuilder(LOG::info).cached(cache, model, build);
    LOG.info("engine {} ({})", entry.file(), entry.outcome());
    return TrtEngine.load(entry, RuntimeOptions.defaults().withCudaGraphs(options.cudaGraphs()));
  }
}
