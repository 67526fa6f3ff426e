package io.kiln.spark;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import io.kiln.ModelException;
import io.kiln.execution.llm.LlmEngine;
import io.kiln.execution.llm.LlmRunners;
import io.kiln.execution.llm.ModelRunner;
import io.kiln.execution.llm.RunnerOptions;
import io.kiln.execution.llm.SchedulerConfig;
import io.kiln.model.llama.LlamaConfig;
import io.kiln.model.llama.WeightQuantizer;
import io.kiln.util.HfTokenizers;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

/**
 * An executor's language model: one runner and one {@link LlmEngine} that every task of the
 * executor submits to, so continuous batching merges their rows; plus the tokenizer when the model
 * directory has one.
 */
final class LlmWorker implements AutoCloseable {
  /** Tokens of context each in-flight row is given room for when the KV pool is sized for us. */
  static final int DEFAULT_TOKENS_PER_ROW = 1024;

  private final ModelRunner runner;
  private final LlmEngine engine;
  private final HuggingFaceTokenizer tokenizer;

  private LlmWorker(ModelRunner runner, LlmEngine engine, HuggingFaceTokenizer tokenizer) {
    this.runner = runner;
    this.engine = engine;
    this.tokenizer = tokenizer;
  }

  /** The CUDA runner's settings a generator carries (the CPU runner ignores them). */
  record CudaSettings(String dtype, double kvUtilization, int maxModelLen)
      implements java.io.Serializable {}

  /**
   * Opens the model in {@code dir} on {@code on}. With {@code kvBlocks} 0 the CPU pool holds {@code
   * maxRows} rows of up to {@link #DEFAULT_TOKENS_PER_ROW} tokens (within the context), and a CUDA
   * pool fills the free device memory.
   */
  static LlmWorker open(
      Path dir,
      DeviceAssignment on,
      int maxRows,
      int threads,
      int blockSize,
      int kvBlocks,
      String quantization,
      CudaSettings cudaSettings) {
    LlamaConfig config = LlamaConfig.load(dir);
    boolean cuda = on.device() == io.kiln.Device.CUDA;
    int tokensPerRow = Math.min(config.maxPositions(), DEFAULT_TOKENS_PER_ROW);
    int blocks =
        kvBlocks > 0 ? kvBlocks : cuda ? 0 : maxRows * ((tokensPerRow + blockSize - 1) / blockSize);
    SchedulerConfig scheduler = SchedulerConfig.defaults().withMaxNumSeqs(maxRows);
    RunnerOptions options =
        RunnerOptions.defaults()
            .withKvBlocks(blocks)
            .withBlockSize(blockSize)
            .withThreads(threads)
            .withMaxNumSeqs(scheduler.maxNumSeqs())
            .withMaxBatchedTokens(scheduler.maxNumBatchedTokens())
            .withQuantization(
                quantization.isEmpty() ? null : WeightQuantizer.Format.parse(quantization))
            .withKvUtilization(cudaSettings.kvUtilization())
            .withMaxModelLen(cudaSettings.maxModelLen())
            .withStorage(RunnerOptions.Storage.parse(cudaSettings.dtype()));
    HuggingFaceTokenizer tokenizer = loadTokenizer(dir);
    ModelRunner runner = null;
    try {
      runner = LlmRunners.open(dir, on.device(), options);
      return new LlmWorker(runner, new LlmEngine(runner, scheduler), tokenizer);
    } catch (RuntimeException e) {
      if (runner != null) {
        runner.close();
      }
      if (tokenizer != null) {
        tokenizer.close();
      }
      throw e;
    }
  }

  private static HuggingFaceTokenizer loadTokenizer(Path dir) {
    Path file = dir.resolve("tokenizer.json");
    if (!Files.isRegularFile(file)) {
      return null;
    }
    try {
      return HfTokenizers.open(file, Map.of("truncation", "false", "padding", "false"));
    } catch (IOException | RuntimeException e) {
      throw new ModelException("cannot load tokenizer " + file + ": " + e.getMessage(), e);
    }
  }

  LlmEngine engine() {
    return engine;
  }

  /** Null when the model directory has no tokenizer.json. */
  HuggingFaceTokenizer tokenizer() {
    return tokenizer;
  }

  @Override
  public void close() {
    try {
      engine.close();
    } finally {
      runner.close();
      if (tokenizer != null) {
        tokenizer.close();
      }
    }
  }
}
