package io.kiln.engine.trt;

import io.kiln.Backend;
import io.kiln.Device;
import io.kiln.Precision;
import io.kiln.cuda.GpuProbe;
import io.kiln.engine.Engine;
import io.kiln.engine.EngineOptions;
import io.kiln.engine.EngineProvider;
import io.kiln.engine.PrecisionGraph;
import io.kiln.model.ModelSource;
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
  public Backend backend() {
    return Backend.TENSORRT;
  }

  @Override
  public Device device() {
    return Device.CUDA;
  }

  @Override
  public Optional<String> unavailableReason() {
    return GpuProbe.tensorRtUnavailableReason();
  }

  /**
   * INT8 is the float16 form of a Q/DQ graph with one shared pair per tensor on the weighted
   * MatMuls, built strongly typed (TensorRT's precision flags are deprecated), so nothing outside
   * the pairs runs in float32: the fastest layout measured
   * (bench/results/gpu-bert-base-2026-11-29-job4.md).
   */
  @Override
  public PrecisionGraph graphFor(Precision precision) {
    return precision == Precision.INT8
        ? PrecisionGraph.int8(new PrecisionGraph.QdqLayout(false, true, true), true)
        : PrecisionGraph.of(precision);
  }

  @Override
  public Engine open(ModelSource model, EngineOptions options) {
    int max = Math.max(1, options.maxBatchSize());
    int opt = Math.min(Math.max(1, options.batchSize()), max);
    BuildOptions build =
        BuildOptions.builder()
            .precision(options.precision())
            .stronglyTyped(options.graph().float16Form())
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
