package io.kiln.cli;

import io.kiln.Device;
import io.kiln.InvalidInputException;
import io.kiln.ModelException;
import io.kiln.execution.kv.KvBlockManager;
import io.kiln.execution.llm.LlmRunners;
import io.kiln.execution.llm.ModelRunner;
import io.kiln.execution.llm.RunnerOptions;
import io.kiln.model.llama.LlamaConfig;
import io.kiln.model.llama.WeightQuantizer;
import java.nio.file.Files;
import java.nio.file.Path;
import picocli.CommandLine;
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
          "cuda: steps of up to 8 rows (batch-1 decode, speculative verification) through"
              + " Kiln's skinny GEMM (RoPE, K/V write and SiLU fused) instead of cuBLAS"
              + " (default: on)")
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
          "cuda: fold the RMSNorm weights into the products that read the norms; steps of up"
              + " to 8 rows then run each norm and residual add inside a skinny product (default:"
              + " on)")
  boolean fusedNorms;

  @Option(
      names = "--int8-lm-head",
      paramLabel = "off|draft|on",
      defaultValue = "draft",
      description =
          "cuda, f16: which runners also keep the LM head as int8 codes (a scale per row) for"
              + " steps of up to 8 logits rows, half the bytes of the largest matrix of a small"
              + " model: draft models (their proposals are verified, so outputs stay the"
              + " same; the default), every runner (the logits move by the int8 step), or none")
  String int8LmHead;

  @Option(
      names = "--quantization",
      paramLabel = "int8|fp8",
      description =
          "cpu: store the projection weights in 8 bits on load (per-row scales), as a kiln"
              + " quantize-llm checkpoint would be read (default: as the checkpoint has them)")
  String quantization;

  boolean cuda() {
    return switch (device.toLowerCase(java.util.Locale.ROOT)) {
      case "cpu" -> false;
      case "cuda", "gpu" -> true;
      default ->
          throw new InvalidInputException("--device must be cpu or cuda, got '" + device + "'");
    };
  }

  /** A short description of the backend for reports. */
  String backend() {
    if (!cuda()) {
      return "cpu (float32)";
    }
    String gemm = skinnyGemm ? "Kiln skinny GEMM up to 8 rows, cuBLAS above" : "cuBLAS";
    String launch = programmaticLaunch ? ", programmatic launch" : "";
    String norms = fusedNorms ? ", norms fused into the products" : "";
    RunnerOptions.Int8LmHead where = int8LmHead();
    String head = where == RunnerOptions.Int8LmHead.OFF ? "" : ", int8 LM head: " + where.label();
    return "cuda ("
        + dtype
        + " storage, fp32 math, "
        + gemm
        + " + Kiln kernels"
        + launch
        + norms
        + head
        + ")";
  }

  /**
   * The runner settings these flags give, for a pool of {@code kvBlocks} usable blocks; on CUDA the
   * pool fills the free device memory instead unless {@code fixedBlocks}.
   */
  /** The shared LLM options' ranges: a value out of range is a usage error. */
  void checkRanges(CommandLine.Model.CommandSpec spec) {
    OptionRanges.threads(spec, "--threads", threads);
    OptionRanges.between(spec, "--block-size", blockSize, 1, 1024);
    OptionRanges.between(spec, "--kv-utilization", kvUtilization, 0.01, 1.0);
    OptionRanges.between(spec, "--max-model-len", maxModelLen, 0, 1 << 24);
    try {
      RunnerOptions.Int8LmHead.parse(int8LmHead);
    } catch (InvalidInputException e) {
      throw OptionRanges.usage(
          spec, "--int8-lm-head must be off, draft or on, got '" + int8LmHead + "'");
    }
    if (quantization != null) {
      try {
        WeightQuantizer.Format.parse(quantization);
      } catch (InvalidInputException e) {
        throw OptionRanges.usage(
            spec, "--quantization must be int8 or fp8, got '" + quantization + "'");
      }
    }
  }

  RunnerOptions runnerOptions(
      int kvBlocks, boolean fixedBlocks, int maxNumSeqs, int maxBatchedTokens) {
    boolean onCuda = cuda();
    RunnerOptions options =
        RunnerOptions.defaults()
            .withKvBlocks(onCuda && !fixedBlocks ? 0 : kvBlocks)
            .withBlockSize(blockSize)
            .withThreads(threads != null ? threads : 0)
            .withKvUtilization(kvUtilization)
            .withMaxNumSeqs(maxNumSeqs)
            .withMaxBatchedTokens(maxBatchedTokens)
            .withMaxModelLen(maxModelLen)
            .withCudaGraphs(!noCudaGraphs)
            .withSkinnyGemm(skinnyGemm)
            .withProgrammaticLaunch(programmaticLaunch)
            .withFusedNorms(fusedNorms)
            .withInt8LmHead(int8LmHead())
            .withQuantization(quantization == null ? null : weightFormat());
    // The CPU runner is float32 whatever --dtype says, so only CUDA parses it.
    return onCuda ? options.withStorage(storage()) : options;
  }

  RunnerOptions.Int8LmHead int8LmHead() {
    try {
      return RunnerOptions.Int8LmHead.parse(int8LmHead);
    } catch (InvalidInputException e) {
      throw new InvalidInputException(
          "--int8-lm-head must be off, draft or on, got '" + int8LmHead + "'");
    }
  }

  /** The runner for the chosen device. */
  ModelRunner openRunner(RunnerOptions options) {
    return openRunner(model, options);
  }

  /** The runner of another model directory (a draft model) on the chosen device. */
  ModelRunner openRunner(Path modelDir, RunnerOptions options) {
    return LlmRunners.open(modelDir, deviceKind(), options);
  }

  Device deviceKind() {
    return cuda() ? Device.CUDA : Device.CPU;
  }

  private WeightQuantizer.Format weightFormat() {
    try {
      return WeightQuantizer.Format.parse(quantization);
    } catch (InvalidInputException e) {
      throw new InvalidInputException(
          "--quantization must be int8 or fp8, got '" + quantization + "'");
    }
  }

  private RunnerOptions.Storage storage() {
    try {
      return RunnerOptions.Storage.parse(dtype);
    } catch (InvalidInputException e) {
      throw new InvalidInputException("--dtype must be f16 or f32, got '" + dtype + "'");
    }
  }

  LlamaConfig config() {
    if (!Files.isDirectory(model)) {
      throw new ModelException("model directory not found: " + model);
    }
    return LlamaConfig.load(model);
  }

  int blocksFor(int tokens) {
    return (tokens + blockSize - 1) / blockSize;
  }
}
