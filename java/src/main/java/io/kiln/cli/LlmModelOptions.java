package io.kiln.cli;

import io.kiln.ModelException;
import io.kiln.execution.kv.KvBlockManager;
import io.kiln.execution.llm.CpuLlamaRunner;
import io.kiln.execution.llm.KvPoolSpec;
import io.kiln.model.llama.LlamaConfig;
import io.kiln.model.llama.LlamaWeights;
import java.nio.file.Files;
import java.nio.file.Path;
import picocli.CommandLine.Option;

/** Options shared by the LLM commands: which model, and how to run it on the CPU. */
final class LlmModelOptions {
  @Option(
      names = "--model",
      required = true,
      paramLabel = "DIR",
      description = "Hugging Face model directory (config.json, *.safetensors)")
  Path model;

  @Option(names = "--threads", description = "CPU threads for the model (default: all cores)")
  Integer threads;

  @Option(
      names = "--block-size",
      defaultValue = "" + KvBlockManager.DEFAULT_BLOCK_SIZE,
      description = "KV cache block size in tokens (default: 16)")
  int blockSize;

  LlamaConfig config() {
    if (!Files.isDirectory(model)) {
      throw new ModelException("model directory not found: " + model);
    }
    return LlamaConfig.load(model);
  }

  /** A CPU runner whose pool holds {@code blocks} blocks besides the null block. */
  CpuLlamaRunner openRunner(int blocks) {
    int cores = threads != null ? threads : Runtime.getRuntime().availableProcessors();
    return new CpuLlamaRunner(
        LlamaWeights.load(model), new KvPoolSpec(blocks + 1, blockSize), Math.max(1, cores));
  }

  int blocksFor(int tokens) {
    return (tokens + blockSize - 1) / blockSize;
  }
}
