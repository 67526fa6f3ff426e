package io.kiln.execution.llm.gpu;

import io.kiln.BackendException;
import java.util.ArrayList;
import java.util.List;
import org.bytedeco.cuda.cudart.CUstream_st;

/**
 * The runner's kernels for one storage type and head size, one typed method per kernel of
 * llm_kernels.cu. Each method takes the kernel's C parameters in their order (device pointers as
 * {@code long} addresses, {@code long long} counts as {@code long}), picks the launch geometry the
 * kernel is written for and enqueues it on {@code stream}.
 */
public final class Kernels {
  /** Threads per block of the elementwise kernels (one thread per element). */
  static final int ELEMENTWISE_THREADS = 256;

  /** Threads per block of the norms (one block per row). */
  static final int NORM_THREADS = 256;

  /** Threads per block of paged attention (its launch bound). */
  static final int ATTENTION_THREADS = 128;

  /** Threads per block of the argmax (one block per row, its launch bound). */
  static final int SAMPLE_THREADS = 1024;

  private final Kernel embeddingGather;
  private final Kernel rmsnorm;
  private final Kernel addRmsnorm;
  private final Kernel ropeKvWrite;
  private final Kernel addBias;
  private final Kernel siluMul;
  private final Kernel residualAdd;
  private final Kernel pagedAttention;
  private final Kernel attentionCombine;
  private final Kernel castToHalf;
  private final Kernel gatherRows;
  private final Kernel argmax;
  private final SkinnyGemm.Variants skinnyGemm;
  private final SkinnyGemm.Variants skinnyGemmBias;
  private final SkinnyGemm.Variants skinnyGemmSilu;
  private final SkinnyGemm.Variants skinnyGemmRopeKv;
  private final SkinnyGemm.Variants skinnyGemmResidual;
  private final SkinnyGemm.Variants skinnyGemmLogits;
  private final SkinnyGemm.Variants skinnyGemmSiluNormed;
  private final SkinnyGemm.Variants skinnyGemmRopeKvNormed;

  /** The int8 LM head; null unless fp16 storage. */
  private final SkinnyGemm.Variants skinnyGemmLogitsInt8;

  Kernels(CudaModule module, StorageType storage, int headDim) {
    this(module, storage, headDim, false);
  }

  /**
   * @param overlap launch every kernel with programmatic dependent launch (see {@link
   *     Kernel#overlapPrevious})
   */
  public Kernels(CudaModule module, StorageType storage, int headDim, boolean overlap) {
    String suffix = "_" + storage.suffix;
    embeddingGather = module.kernel("embedding_gather" + suffix, "pppii");
    rmsnorm = module.kernel("rmsnorm" + suffix, "pppif");
    addRmsnorm = module.kernel("add_rmsnorm" + suffix, "ppppif");
    ropeKvWrite = module.kernel("rope_kv_write" + suffix, "pppppppiiiii");
    addBias = module.kernel("add_bias" + suffix, "ppii");
    siluMul = module.kernel("silu_mul" + suffix, "ppii");
    residualAdd = module.kernel("residual_add" + suffix, "ppl");
    pagedAttention =
        module.kernel("paged_attention" + suffix + "_hd" + headDim, "pipppippiiifiipppii");
    attentionCombine = module.kernel("attention_combine" + suffix, "pppiiii");
    castToHalf = module.kernel("cast_f32_to_f16", "ppl");
    gatherRows = module.kernel("gather_rows_f32", "pppii");
    argmax = module.kernel("argmax_f32", "pip");
    skinnyGemm =
        SkinnyGemm.Variants.withTensorCores(module, "skinny_gemm", storage, "pppiiii", false);
    skinnyGemmBias =
        SkinnyGemm.Variants.withTensorCores(module, "skinny_gemm_bias", storage, "ppppiiii", false);
    skinnyGemmSilu =
        SkinnyGemm.Variants.withTensorCores(module, "skinny_gemm_silu", storage, "pppiiii", true);
    skinnyGemmRopeKv =
        SkinnyGemm.Variants.withTensorCores(
            module, "skinny_gemm_rope_kv", storage, "pppiiiippppppiii", true);
    skinnyGemmResidual =
        SkinnyGemm.Variants.withTensorCores(
            module, "skinny_gemm_residual", storage, "pppiiii", false);
    skinnyGemmLogits =
        SkinnyGemm.Variants.withTensorCores(
            module, "skinny_gemm_logits", storage, "pppiiiip", false);
    skinnyGemmSiluNormed =
        SkinnyGemm.Variants.withTensorCores(
            module, "skinny_gemm_silu_normed", storage, "pppiiiif", true);
    skinnyGemmRopeKvNormed =
        SkinnyGemm.Variants.withTensorCores(
            module, "skinny_gemm_rope_kv_normed", storage, "pppiiiippppppiiif", true);
    skinnyGemmLogitsInt8 =
        storage == StorageType.F16 ? SkinnyGemm.Variants.int8Logits(module) : null;
    List<Kernel> all =
        new ArrayList<>(
            List.of(
                embeddingGather,
                rmsnorm,
                addRmsnorm,
                ropeKvWrite,
                addBias,
                siluMul,
                residualAdd,
                pagedAttention,
                attentionCombine,
                castToHalf,
                gatherRows,
                argmax));
    for (SkinnyGemm.Variants variants :
        List.of(
            skinnyGemm,
            skinnyGemmBias,
            skinnyGemmSilu,
            skinnyGemmRopeKv,
            skinnyGemmResidual,
            skinnyGemmLogits,
            skinnyGemmSiluNormed,
            skinnyGemmRopeKvNormed)) {
      all.addAll(variants.all());
    }
    if (skinnyGemmLogitsInt8 != null) {
      all.addAll(skinnyGemmLogitsInt8.all());
    }
    for (Kernel kernel : all) {
      kernel.overlapPrevious(overlap);
    }
  }

  // ---- elementwise and norms ------------------------------------------------------------------

  /** {@code embedding_gather(float* x, const T* table, const int* tokens, int n, int dim)}. */
  void embeddingGather(CUstream_st stream, long x, long table, long tokens, int n, int dim) {
    embeddingGather.launch1d(stream, (long) n * dim, ELEMENTWISE_THREADS, x, table, tokens, n, dim);
  }

  /**
   * {@code rmsnorm(T* out, const float* x, const float* weight, int dim, float eps)}, one block per
   * row.
   */
  void rmsnorm(CUstream_st stream, int rows, long out, long x, long weight, int dim, float eps) {
    rmsnorm.launch(stream, rows, 1, 1, NORM_THREADS, 0, out, x, weight, dim, eps);
  }

  /**
   * {@code add_rmsnorm(float* x, const T* delta, T* out, const float* weight, int dim, float eps)},
   * one block per row.
   */
  void addRmsnorm(
      CUstream_st stream, int rows, long x, long delta, long out, long weight, int dim, float eps) {
    addRmsnorm.launch(stream, rows, 1, 1, NORM_THREADS, 0, x, delta, out, weight, dim, eps);
  }

  /**
   * {@code rope_kv_write(T* qkv, const int* positions, const float* cos_table, const float*
   * sin_table, T* key_cache, T* value_cache, const int* slot_mapping, int n, int num_heads, int
   * num_kv_heads, int head_dim, int row_stride)}, one thread per rotation pair of the q, k and v
   * heads.
   */
  void ropeKvWrite(
      CUstream_st stream,
      long qkv,
      long positions,
      long cosTable,
      long sinTable,
      long keyCache,
      long valueCache,
      long slotMapping,
      int n,
      int numHeads,
      int numKvHeads,
      int headDim,
      int rowStride) {
    ropeKvWrite.launch1d(
        stream,
        (long) n * (numHeads + 2 * numKvHeads) * (headDim / 2),
        ELEMENTWISE_THREADS,
        qkv,
        positions,
        cosTable,
        sinTable,
        keyCache,
        valueCache,
        slotMapping,
        n,
        numHeads,
        numKvHeads,
        headDim,
        rowStride);
  }

  /** {@code add_bias(T* y, const T* bias, int n, int cols)}. */
  void addBias(CUstream_st stream, long y, long bias, int n, int cols) {
    addBias.launch1d(stream, (long) n * cols, ELEMENTWISE_THREADS, y, bias, n, cols);
  }

  /** {@code silu_mul(T* out, const T* gate_up, int n, int ff)}. */
  public void siluMul(CUstream_st stream, long out, long gateUp, int n, int ff) {
    siluMul.launch1d(stream, (long) n * ff, ELEMENTWISE_THREADS, out, gateUp, n, ff);
  }

  /** {@code residual_add(float* x, const T* delta, long long count)}. */
  void residualAdd(CUstream_st stream, long x, long delta, long count) {
    residualAdd.launch1d(stream, count, ELEMENTWISE_THREADS, x, delta, count);
  }

  /** {@code cast_f32_to_f16(__half* out, const float* in, long long count)}. */
  void castToHalf(CUstream_st stream, long out, long in, long count) {
    castToHalf.launch1d(stream, count, ELEMENTWISE_THREADS, out, in, count);
  }

  /** {@code gather_rows_f32(float* out, const float* x, const int* rows, int n, int dim)}. */
  void gatherRows(CUstream_st stream, long out, long x, long rowIndices, int n, int dim) {
    gatherRows.launch1d(stream, (long) n * dim, ELEMENTWISE_THREADS, out, x, rowIndices, n, dim);
  }

  /** {@code argmax_f32(const float* logits, int vocab, int* out)}, one block per row. */
  void argmax(CUstream_st stream, int rows, long logits, int vocab, long out) {
    argmax.launch(stream, rows, 1, 1, SAMPLE_THREADS, 0, logits, vocab, out);
  }

  // ---- attention ------------------------------------------------------------------------------

  /**
   * {@code paged_attention_hdN(const T* q, int q_stride, const T* key_cache, const T* value_cache,
   * const int* block_tables, int table_stride, const int* row_seq, const int* context_lens, int
   * num_heads, int num_kv_heads, int block_size, float scale, int window, int num_splits, float*
   * part_acc, float* part_ml, T* out, int out_stride, int decode)} on a grid of KV heads x rows x
   * splits.
   */
  void pagedAttention(
      CUstream_st stream,
      int rows,
      long q,
      int qStride,
      long keyCache,
      long valueCache,
      long blockTables,
      int tableStride,
      long rowSeq,
      long contextLens,
      int numHeads,
      int numKvHeads,
      int blockSize,
      float scale,
      int window,
      int numSplits,
      long partAcc,
      long partMl,
      long out,
      int outStride,
      boolean decode) {
    pagedAttention.launch(
        stream,
        numKvHeads,
        rows,
        numSplits,
        ATTENTION_THREADS,
        0,
        q,
        qStride,
        keyCache,
        valueCache,
        blockTables,
        tableStride,
        rowSeq,
        contextLens,
        numHeads,
        numKvHeads,
        blockSize,
        scale,
        window,
        numSplits,
        partAcc,
        partMl,
        out,
        outStride,
        decode ? 1 : 0);
  }

  /**
   * {@code attention_combine(const float* part_acc, const float* part_ml, T* out, int num_heads,
   * int head_dim, int num_splits, int out_stride)} on a grid of heads x rows, one thread per
   * element of a head.
   */
  void attentionCombine(
      CUstream_st stream,
      int rows,
      long partAcc,
      long partMl,
      long out,
      int numHeads,
      int headDim,
      int numSplits,
      int outStride) {
    attentionCombine.launch(
        stream, numHeads, rows, 1, headDim, 0, partAcc, partMl, out, numHeads, headDim, numSplits,
        outStride);
  }

  // ---- skinny GEMM (see SkinnyGemm for the geometry) -----------------------------------------

  /** {@code skinny_gemm(T* y, const T* x, const T* w, int m, int in, int out, int ksplit)}. */
  public void skinnyGemm(
      CUstream_st stream, int multiprocessors, int m, int in, int out, long y, long x, long w) {
    SkinnyGemm.launch(skinnyGemm, stream, multiprocessors, m, in, out, y, x, w);
  }

  /**
   * {@code skinny_gemm_bias(T* y, const T* x, const T* w, const T* bias, int m, int in, int out,
   * int ksplit)}.
   */
  void skinnyGemmBias(
      CUstream_st stream,
      int multiprocessors,
      int m,
      int in,
      int out,
      long y,
      long x,
      long w,
      long bias) {
    SkinnyGemm.launchBias(skinnyGemmBias, stream, multiprocessors, m, in, out, y, x, w, bias);
  }

  /**
   * {@code skinny_gemm_silu(T* y, const T* x, const T* w, int m, int in, int out, int ksplit)}:
   * {@code out} is ff, the weight holds gate then up.
   */
  public void skinnyGemmSilu(
      CUstream_st stream, int multiprocessors, int m, int in, int out, long y, long x, long w) {
    SkinnyGemm.launch(skinnyGemmSilu, stream, multiprocessors, m, in, out, y, x, w);
  }

  /**
   * {@code skinny_gemm_residual(float* y, const T* x, const T* w, int m, int in, int out, int
   * ksplit)}: adds into the fp32 residual stream {@code y}.
   */
  public void skinnyGemmResidual(
      CUstream_st stream, int multiprocessors, int m, int in, int out, long y, long x, long w) {
    SkinnyGemm.launch(skinnyGemmResidual, stream, multiprocessors, m, in, out, y, x, w);
  }

  /**
   * {@code skinny_gemm_logits(float* y, const T* x, const T* w, int m, int in, int out, int ksplit,
   * unsigned long long* keys)}.
   */
  void skinnyGemmLogits(
      CUstream_st stream,
      int multiprocessors,
      int m,
      int in,
      int out,
      long y,
      long x,
      long w,
      long keys) {
    SkinnyGemm.launchLogits(skinnyGemmLogits, stream, multiprocessors, m, in, out, y, x, w, keys);
  }

  /**
   * {@code skinny_gemm_logits_i8_f16(float* y, const __half* x, const int8_t* w, const float*
   * scales, int m, int in, int out, int ksplit, unsigned long long* keys)}: the LM head on int8
   * codes with a scale per row; fp16 storage only.
   */
  void skinnyGemmLogitsInt8(
      CUstream_st stream,
      int multiprocessors,
      int m,
      int in,
      int out,
      long y,
      long x,
      long codes,
      long scales,
      long keys) {
    if (skinnyGemmLogitsInt8 == null) {
      throw new BackendException("the int8 LM head reads fp16 activations: needs f16 storage");
    }
    SkinnyGemm.launchLogitsInt8(
        skinnyGemmLogitsInt8, stream, multiprocessors, m, in, out, y, x, codes, scales, keys);
  }

  /**
   * {@code skinny_gemm_silu_normed(T* y, const float* x, const T* w, int m, int in, int out, int
   * ksplit, float eps)}.
   */
  public void skinnyGemmSiluNormed(
      CUstream_st stream,
      int multiprocessors,
      int m,
      int in,
      int out,
      long y,
      long x,
      long w,
      float eps) {
    SkinnyGemm.launchNormed(
        skinnyGemmSiluNormed, stream, multiprocessors, m, in, out, y, x, w, eps);
  }

  /**
   * {@code skinny_gemm_rope_kv(T* y, const T* x, const T* w, int m, int in, int out, int ksplit,
   * ...RopeKv)}.
   */
  void skinnyGemmRopeKv(
      CUstream_st stream,
      int multiprocessors,
      int m,
      int in,
      int out,
      long y,
      long x,
      long w,
      SkinnyGemm.RopeKv rope) {
    SkinnyGemm.launchRopeKv(skinnyGemmRopeKv, stream, multiprocessors, m, in, out, y, x, w, rope);
  }

  /**
   * {@code skinny_gemm_rope_kv_normed(T* y, const float* x, const T* w, int m, int in, int out, int
   * ksplit, ...RopeKv, float eps)}.
   */
  public void skinnyGemmRopeKvNormed(
      CUstream_st stream,
      int multiprocessors,
      int m,
      int in,
      int out,
      long y,
      long x,
      long w,
      SkinnyGemm.RopeKv rope,
      float eps) {
    SkinnyGemm.launchRopeKvNormed(
        skinnyGemmRopeKvNormed, stream, multiprocessors, m, in, out, y, x, w, rope, eps);
  }
}
