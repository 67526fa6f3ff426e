package io.kiln.execution.llm;

import io.kiln.Device;
import io.kiln.model.llama.LlamaConfig;
import io.kiln.model.llama.LlamaWeights;
import io.kiln.model.llama.WeightQuantizer;
import java.nio.file.Path;
import java.util.Optional;

/** The float32 CPU Llama runner; always available. */
public final class CpuRunnerProvider implements RunnerProvider {
  @Override
  public Device device() {
    return Device.CPU;
  }

  @Override
  public Optional<String> unavailableReason() {
    return Optional.empty();
  }

  @Override
  public ModelRunner open(Path modelDir, RunnerOptions options) {
    LlamaConfig config = LlamaConfig.load(modelDir);
    int usableBlocks =
        options.kvBlocks() > 0 ? options.kvBlocks() : blocksFromFreeHeap(config, options);
    KvPoolSpec pool = KvPoolSpec.ofUsableBlocks(usableBlocks, options.blockSize());
    if (options.quantization() == null) {
      return CpuLlamaRunner.open(modelDir, pool, options.resolvedThreads());
    }
    LlamaWeights weights = LlamaWeights.load(modelDir);
    WeightQuantizer.quantizeInPlace(weights, options.quantization());
    return new CpuLlamaRunner(weights, pool, options.resolvedThreads());
  }

  /**
   * Enough blocks for {@code maxNumSeqs} sequences of the longest length served, but no more than
   * {@code kvUtilization} of the heap left once the float32 weights are in.
   */
  static int blocksFromFreeHeap(LlamaConfig config, RunnerOptions options) {
    int blocksPerSequence =
        (options.maxModelLenFor(config.maxPositions()) + options.blockSize() - 1)
            / options.blockSize();
    long wanted = (long) options.maxNumSeqs() * blocksPerSequence;
    Runtime runtime = Runtime.getRuntime();
    long used = runtime.totalMemory() - runtime.freeMemory();
    long free = Math.max(0, runtime.maxMemory() - used - weightBytes(config));
    KvPoolSpec fits =
        CpuLlamaRunner.poolFor(
            config, (long) (free * options.kvUtilization()), options.blockSize());
    return (int) Math.max(1, Math.min(wanted, fits.usableBlocks()));
  }

  /** The float32 weights, counted from the shape (a tied lm_head counted anyway, to be safe). */
  private static long weightBytes(LlamaConfig config) {
    long hidden = config.hiddenSize();
    long perLayer =
        hidden * (2L * config.queryDim() + 2L * config.kvDim())
            + 3L * hidden * config.intermediateSize()
            + 2L * hidden;
    return Float.BYTES * (perLayer * config.numLayers() + 2L * config.vocabSize() * hidden);
  }
}
