package io.kiln.execution.llm.gpu;

import io.kiln.InvalidInputException;

/**
 * How a {@link GpuLlamaRunner} is set up.
 *
 * @param storage fp16 (default) or fp32 for weights, activations and the KV cache
 * @param kvUtilization share of the device memory left after weights, activations and graphs that
 *     the KV pool takes (default 0.90)
 * @param kvBlocks a fixed KV pool size in blocks (null block included) instead, or 0
 * @param maxNumSeqs most sequences in one step; decode graphs are captured up to this batch
 * @param maxBatchedTokens most tokens in one step (activation buffers are sized for it)
 * @param maxModelLen longest sequence served, 0 for min(model context, 4096)
 * @param cudaGraphs replay decode steps as captured CUDA graphs (else launch eagerly)
 * @param skinnyGemm dense layers of one-row steps (batch-1 decode) through Kiln's skinny GEMM, with
 *     RoPE, the K/V write and the SiLU gate fused into it, instead of cuBLAS; on by default
 * @param programmaticLaunch launch Kiln's kernels with programmatic dependent launch (sm_90 and
 *     later; ignored below): each may start while the previous kernel finishes, and the skinny GEMM
 *     streams its first weights before it waits; on by default (with the skinny GEMM, batch-1
 *     decode measured 1.07 against 1.26 ms a step for cuBLAS on an H200)
 */
public record GpuRunnerOptions(
    StorageType storage,
    double kvUtilization,
    int kvBlocks,
    int blockSize,
    int maxNumSeqs,
    int maxBatchedTokens,
    int maxModelLen,
    boolean cudaGraphs,
    boolean skinnyGemm,
    boolean programmaticLaunch) {

  public static final int DEFAULT_MAX_MODEL_LEN = 4096;

  public GpuRunnerOptions {
    if (storage == null) {
      throw new InvalidInputException("storage type missing");
    }
    if (!(kvUtilization > 0 && kvUtilization <= 1)) {
      throw new InvalidInputException("KV utilization must be in (0, 1], got " + kvUtilization);
    }
    if (kvBlocks != 0 && kvBlocks < 2) {
      throw new InvalidInputException("a fixed KV pool needs at least 2 blocks, got " + kvBlocks);
    }
    if (blockSize < 1 || maxNumSeqs < 1 || maxBatchedTokens < 1 || maxModelLen < 0) {
      throw new InvalidInputException(
          "block size, max sequences and max batched tokens must be >= 1, max model length >= 0");
    }
  }

  public static GpuRunnerOptions defaults() {
    return new GpuRunnerOptions(StorageType.F16, 0.90, 0, 16, 64, 512, 0, true, true, true);
  }

  public GpuRunnerOptions withStorage(StorageType s) {
    return new GpuRunnerOptions(
        s,
        kvUtilization,
        kvBlocks,
        blockSize,
        maxNumSeqs,
        maxBatchedTokens,
        maxModelLen,
        cudaGraphs,
        skinnyGemm,
        programmaticLaunch);
  }

  public GpuRunnerOptions withKvUtilization(double u) {
    return new GpuRunnerOptions(
        storage,
        u,
        kvBlocks,
        blockSize,
        maxNumSeqs,
        maxBatchedTokens,
        maxModelLen,
        cudaGraphs,
        skinnyGemm,
        programmaticLaunch);
  }

  public GpuRunnerOptions withKvBlocks(int blocks) {
    return new GpuRunnerOptions(
        storage,
        kvUtilization,
        blocks,
        blockSize,
        maxNumSeqs,
        maxBatchedTokens,
        maxModelLen,
        cudaGraphs,
        skinnyGemm,
        programmaticLaunch);
  }

  public GpuRunnerOptions withBlockSize(int size) {
    return new GpuRunnerOptions(
        storage,
        kvUtilization,
        kvBlocks,
        size,
        maxNumSeqs,
        maxBatchedTokens,
        maxModelLen,
        cudaGraphs,
        skinnyGemm,
        programmaticLaunch);
  }

  public GpuRunnerOptions withMaxNumSeqs(int n) {
    return new GpuRunnerOptions(
        storage,
        kvUtilization,
        kvBlocks,
        blockSize,
        n,
        maxBatchedTokens,
        maxModelLen,
        cudaGraphs,
        skinnyGemm,
        programmaticLaunch);
  }

  public GpuRunnerOptions withMaxBatchedTokens(int n) {
    return new GpuRunnerOptions(
        storage,
        kvUtilization,
        kvBlocks,
        blockSize,
        maxNumSeqs,
        n,
        maxModelLen,
        cudaGraphs,
        skinnyGemm,
        programmaticLaunch);
  }

  public GpuRunnerOptions withMaxModelLen(int n) {
    return new GpuRunnerOptions(
        storage,
        kvUtilization,
        kvBlocks,
        blockSize,
        maxNumSeqs,
        maxBatchedTokens,
        n,
        cudaGraphs,
        skinnyGemm,
        programmaticLaunch);
  }

  public GpuRunnerOptions withCudaGraphs(boolean on) {
    return new GpuRunnerOptions(
        storage,
        kvUtilization,
        kvBlocks,
        blockSize,
        maxNumSeqs,
        maxBatchedTokens,
        maxModelLen,
        on,
        skinnyGemm,
        programmaticLaunch);
  }

  public GpuRunnerOptions withSkinnyGemm(boolean on) {
    return new GpuRunnerOptions(
        storage,
        kvUtilization,
        kvBlocks,
        blockSize,
        maxNumSeqs,
        maxBatchedTokens,
        maxModelLen,
        cudaGraphs,
        on,
        programmaticLaunch);
  }

  public GpuRunnerOptions withProgrammaticLaunch(boolean on) {
    return new GpuRunnerOptions(
        storage,
        kvUtilization,
        kvBlocks,
        blockSize,
        maxNumSeqs,
        maxBatchedTokens,
        maxModelLen,
        cudaGraphs,
        skinnyGemm,
        on);
  }
}
