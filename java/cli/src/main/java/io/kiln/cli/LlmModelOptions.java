package io.kiln.cli;

import io.kiln.ModelException;
import io.kiln.execution.kv.KvBlockManager;
import io.kiln.execution.llm.CpuLlamaRunner;
import io.kiln.execution.llm.KvPoolSpec;
import io.kiln.execution.llm.ModelRunner;
import io.kiln.execution.llm.gpu.GpuLlamaRunner;
import io.kiln.execution.llm.gpu.GpuRunnerOptions;
import io.kiln.execution.llm.gpu.StorageType;
import io.kiln.model.llama.LlamaConfig;
import io.kiln.model.llama.LlamaWeights;
import java.nio.file.Files;
import java.nio.file.Path;
import picocli.CommandLine.Option;

/** Options shared by the LLM commands: which model, and on which device to run it. */
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

  @Option(
      names = "--device",
      defaultValue = "cpu",
      description = "cpu (float32) or cuda (paged KV cache in device memory; default: cpu)")
  String device;

  @Option(
      names = "--dtype",
      defaultValue = "f16",
      description = "cuda storage type: f16 or f32 (default: f16; math is fp32 either way)")
  String dtype;

  @Option(
      names = "--kv-utilization",
      defaultValue = "0.9",
      description = "cuda: share of the free device memory for the KV cache (default: 0.9)")
  double kvUtilization;

  @Option(
      names = "--max-model-len",
      defaultValue = "0",
      description = "cuda: longest sequence served (default: min(context, 4096))")
  int maxModelLen;

  @Option(names = "--no-cuda-graphs", description = "cuda: launch decode steps eagerly")
  boolean noCudaGraphs;

  @Option(
      names = "--skinny-gemm",
      negatable = true,
      defaultValue = "true",
      fallbackValue = "true",
      description =
          "cuda: batch-1 decode steps through Kiln's skinny GEMM (RoPE, K/V write and SiLU"
              + " fused) instead of cuBLAS (default: on)")
  boolean skinnyGemm;

  @Option(
      names = "--programmatic-launch",
      negatable = true,
      defaultValue = "true",
      fallbackValue = "true",
      description =
          "cuda: launch Kiln's kernels with programmatic dependent launch (sm_90+, ignored"
              + " below), so each may start while the previous one finishes (default: on)")
  boolean programmaticLaunch;

  @Option(
      names = "--fused-norms",
      negatable = true,
      defaultValue = "true",
      fallbackValue = "true",
      description =
          "cuda: fold the RMSNorm weights into the products that read the norms; batch-1 steps"
              + " then run each norm and residual add inside a skinny product (default: on)")
  boolean fusedNorms;

  boolean cuda() {
    return switch (device.toLowerCase(java.util.Locale.ROOT)) {
      case "cpu" -> false;
      case "cuda", "gpu" -> true;
      default ->
          throw new io.kiln.InvalidInputException(
              "--device must be cpu or cuda, got '" + device + "'");
    };
  }

  /** A short description of the backend for reports. */
  String backend() {
    if (!cuda()) {
      return "cpu (float32)";
    }
    String gemm = skinnyGemm ? "Kiln skinny GEMM for one-row steps, cuBLAS above" : "cuBLAS";
    String launch = programmaticLaunch ? ", programmatic launch" : "";
    String norms = fusedNorms ? ", norms fused into the products" : "";
    return "cuda ("
        + dtype
        + " storage, fp32 math, "
        + gemm
        + " + Kiln kernels"
        + launch
        + norms
        + ")";
  }

  /**
   * The runner for the chosen device. On the CPU its pool holds {@code blocks} blocks besides the
   * null block; on CUDA the pool fills the free device memory unless {@code fixedBlocks} is set.
   */
  ModelRunner openRunner(int blocks, boolean fixedBlocks, int maxNumSeqs, int maxBatchedTokens) {
    if (!cuda()) {
      return openRunner(blocks);
    }
    StorageType storage =
        switch (dtype.toLowerCase(java.util.Locale.ROOT)) {
          case "f16", "fp16", "float16" -> StorageType.F16;
          case "f32", "fp32", "float32" -> StorageType.F32;
          default ->
              throw new io.kiln.InvalidInputException(
                  "--dtype must be f16 or f32, got '" + dtype + "'");
        };
    GpuRunnerOptions o =
        GpuRunnerOptions.defaults()
            .withStorage(storage)
            .withKvUtilization(kvUtilization)
            .withKvBlocks(fixedBlocks ? blocks + 1 : 0)
            .withBlockSize(blockSize)
            .withMaxNumSeqs(maxNumSeqs)
            .withMaxBatchedTokens(maxBatchedTokens)
            .withMaxModelLen(maxModelLen)
            .withCudaGraphs(!noCudaGraphs)
            .withSkinnyGemm(skinnyGemm)
            .withProgrammaticLaunch(programmaticLaunch)
            .withFusedNorms(fusedNorms);
    GpuLlamaRunner runner = GpuLlamaRunner.open(checkedModel(), o);
    System.err.println("[kiln] " + runner.startupReport().line());
    return runner;
  }

  private Path checkedModel() {
    config();
    return model;
  }

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
