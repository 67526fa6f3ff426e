package io.kiln.execution.llm.gpu;

import io.kiln.InvalidInputException;
import io.kiln.execution.llm.KvPoolSpec;
import io.kiln.execution.llm.RunnerOptions;
import io.kiln.execution.llm.SpeculativeConfig;

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
 *     RoPE, the K/V write and the SiLU gate fused into it, instead of cuBLAS; with fp16 storage
 *     also steps of 2 to 8 rows (speculative verification), on tensor cores; on by default
 * @param programmaticLaunch launch Kiln's kernels with programmatic dependent launch (sm_90 and
 *     later; ignored below): each may start while the previous kernel finishes, and the skinny GEMM
 *     streams its first weights before it waits; on by default (with the skinny GEMM, batch-1
 *     decode measured 1.07 against 1.26 ms a step for cuBLAS on an H200)
 * @param fusedNorms fold each RMSNorm weight into the weights of the product that reads the norm;
 *     skinny steps (one row, or with fp16 storage up to 8) then compute the norm inside that
 *     product and add each residual inside the product that writes it, with no norm kernels between
 *     the layers; on by default (batch-1 graph replay 0.95 against 1.07 ms on an H200)
 * @param int8LmHead also keep the LM head as int8 codes with a scale per row, used by steps of up
 *     to 8 logits rows (fp16 storage only): half the bytes of the largest matrix of a small model,
 *     the logits moved by the int8 rounding (meant for draft models)
 * @param speculativeTokens steps of up to this + 1 positions per sequence (a verification of K
 *     speculated tokens, a draft's first round) replay graphs captured per batch bucket; 0 captures
 *     none
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
    boolean programmaticLaunch,
    boolean fusedNorms,
    boolean int8LmHead,
    int speculativeTokens) {

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
    SpeculativeConfig.checkVerifiedTokens(speculativeTokens);
    if (int8LmHead && storage != StorageType.F16) {
      throw new InvalidInputException(
          "the int8 LM head reads fp16 activations: it needs f16 storage, got " + storage);
    }
    if (blockSize < 1 || maxNumSeqs < 1 || maxBatchedTokens < 1 || maxModelLen < 0) {
      throw new InvalidInputException(
          "block size, max sequences and max batched tokens must be >= 1, max model length >= 0");
    }
  }

  /**
   * The CUDA runner's reading of the library's typed options. Its fixed pool size counts the null
   * block, which {@link KvPoolSpec#ofUsableBlocks} adds to the usable blocks asked for.
   */
  public static GpuRunnerOptions from(RunnerOptions options) {
    int poolBlocks =
        options.kvBlocks() == 0
            ? 0
            : KvPoolSpec.ofUsableBlocks(options.kvBlocks(), options.blockSize()).numBlocks();
    StorageType storage =
        switch (options.storage()) {
          case F16 -> StorageType.F16;
          case F32 -> StorageType.F32;
        };
    return defaults()
        .withStorage(storage)
        .withKvUtilization(options.kvUtilization())
        .withKvBlocks(poolBlocks)
        .withBlockSize(options.blockSize())
        .withMaxNumSeqs(options.maxNumSeqs())
        .withMaxBatchedTokens(options.maxBatchedTokens())
        .withMaxModelLen(options.maxModelLen())
        .withCudaGraphs(options.cudaGraphs())
        .withSkinnyGemm(options.skinnyGemm())
        .withProgrammaticLaunch(options.programmaticLaunch())
        .withFusedNorms(options.fusedNorms())
        .withInt8LmHead(options.int8LmHead() == RunnerOptions.Int8LmHead.ON)
        .withSpeculativeTokens(options.speculativeTokens());
  }

  public static GpuRunnerOptions defaults() {
    return new GpuRunnerOptions(
        StorageType.F16, 0.90, 0, 16, 64, 512, 0, true, true, true, true, false, 0);
  }

  public GpuRunnerOptions withStorage(StorageType s) {
    return with(b -> b.storage = s);
  }

  public GpuRunnerOptions withKvUtilization(double u) {
    return with(b -> b.kvUtilization = u);
  }

  public GpuRunnerOptions withKvBlocks(int blocks) {
    return with(b -> b.kvBlocks = blocks);
  }

  public GpuRunnerOptions withBlockSize(int size) {
    return with(b -> b.blockSize = size);
  }

  public GpuRunnerOptions withMaxNumSeqs(int n) {
    return with(b -> b.maxNumSeqs = n);
  }

  public GpuRunnerOptions withMaxBatchedTokens(int n) {
    return with(b -> b.maxBatchedTokens = n);
  }

  public GpuRunnerOptions withMaxModelLen(int n) {
    return with(b -> b.maxModelLen = n);
  }

  public GpuRunnerOptions withCudaGraphs(boolean on) {
    return with(b -> b.cudaGraphs = on);
  }

  public GpuRunnerOptions withSkinnyGemm(boolean on) {
    return with(b -> b.skinnyGemm = on);
  }

  public GpuRunnerOptions withProgrammaticLaunch(boolean on) {
    return with(b -> b.programmaticLaunch = on);
  }

  public GpuRunnerOptions withFusedNorms(boolean on) {
    return with(b -> b.fusedNorms = on);
  }

  public GpuRunnerOptions withInt8LmHead(boolean on) {
    return with(c -> c.int8LmHead = on);
  }

  public GpuRunnerOptions withSpeculativeTokens(int tokens) {
    return with(c -> c.speculativeTokens = tokens);
  }

  private GpuRunnerOptions with(java.util.function.Consumer<Copy> change) {
    Copy c = new Copy(this);
    change.accept(c);
    return c.build();
  }

  /** A mutable copy, so that each wither names only the component it changes. */
  private static final class Copy {
    StorageType storage;
    double kvUtilization;
    int kvBlocks;
    int blockSize;
    int maxNumSeqs;
    int maxBatchedTokens;
    int maxModelLen;
    boolean cudaGraphs;
    boolean skinnyGemm;
    boolean programmaticLaunch;
    boolean fusedNorms;
    boolean int8LmHead;
    int speculativeTokens;

    Copy(GpuRunnerOptions o) {
      storage = o.storage;
      kvUtilization = o.kvUtilization;
      kvBlocks = o.kvBlocks;
      blockSize = o.blockSize;
      maxNumSeqs = o.maxNumSeqs;
      maxBatchedTokens = o.maxBatchedTokens;
      maxModelLen = o.maxModelLen;
      cudaGraphs = o.cudaGraphs;
      skinnyGemm = o.skinnyGemm;
      programmaticLaunch = o.programmaticLaunch;
      fusedNorms = o.fusedNorms;
      int8LmHead = o.int8LmHead;
      speculativeTokens = o.speculativeTokens;
    }

    GpuRunnerOptions build() {
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
          programmaticLaunch,
          fusedNorms,
          int8LmHead,
          speculativeTokens);
    }
  }
}
