package io.kiln.engine;

import io.kiln.Precision;
import java.nio.file.Path;

/**
 * What a backend needs to know to compile a model: the session's precision and batching choices.
 *
 * @param graph the precision and form of the model handed over, as the provider asked for it
 * @param cudaGraphs capture and replay CUDA graphs per shape bucket (GPU backends)
 * @param batchSize the batch size the engine is tuned for
 * @param maxBatchSize the largest batch a single run may carry
 * @param intraOpThreads compute threads for CPU backends
 * @param cacheDir where compiled engines are cached between runs
 */
public record EngineOptions(
    PrecisionGraph graph,
    boolean cudaGraphs,
    int batchSize,
    int maxBatchSize,
    int intraOpThreads,
    Path cacheDir) {

  public Precision precision() {
    return graph.precision();
  }
}
