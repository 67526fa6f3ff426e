package io.kiln.execution.llm.gpu;

import org.bytedeco.cuda.cudart.CUstream_st;

/**
 * The kernels only the tests launch, one typed method per kernel with the parameters of its C
 * signature in order: the unfused RoPE and K/V write (references for the fused kernels), the fp16
 * to fp32 cast that reads device data back, top-k/top-p sampling and the fp32-output skinny GEMM.
 */
final class TestKernels {
  private final Kernel rope;
  private final Kernel kvWrite;
  private final Kernel castToFloat;
  private final Kernel sample;
  private final SkinnyGemm.Variants skinnyGemmToFloat;

  TestKernels(CudaModule module, StorageType storage) {
    String suffix = "_" + storage.suffix;
    rope = module.kernel("rope" + suffix, "ppppiiiii");
    kvWrite = module.kernel("kv_write" + suffix, "ppppiiiii");
    castToFloat = module.kernel("cast_f16_to_f32", "ppl");
    sample = module.kernel("sample_f32", "pipppppp");
    skinnyGemmToFloat =
        SkinnyGemm.Variants.withTensorCores(
            module, "skinny_gemm_to_f32", storage, "pppiiii", false);
  }

  /**
   * {@code rope(T* qkv, const int* positions, const float* cos_table, const float* sin_table, int
   * n, int num_heads, int num_kv_heads, int head_dim, int row_stride)}: one thread per rotation
   * pair of the q and k heads.
   */
  void rope(
      CUstream_st stream,
      long qkv,
      long positions,
      long cosTable,
      long sinTable,
      int n,
      int numHeads,
      int numKvHeads,
      int headDim,
      int rowStride) {
    rope.launch1d(
        stream,
        (long) n * (numHeads + numKvHeads) * (headDim / 2),
        Kernels.ELEMENTWISE_THREADS,
        qkv,
        positions,
        cosTable,
        sinTable,
        n,
        numHeads,
        numKvHeads,
        headDim,
        rowStride);
  }

  /**
   * {@code kv_write(T* key_cache, T* value_cache, const T* qkv, const int* slot_mapping, int n, int
   * kv_dim, int row_stride, int k_offset, int v_offset)}.
   */
  void kvWrite(
      CUstream_st stream,
      long keyCache,
      long valueCache,
      long qkv,
      long slotMapping,
      int n,
      int kvDim,
      int rowStride,
      int keyOffset,
      int valueOffset) {
    kvWrite.launch1d(
        stream,
        (long) n * kvDim,
        Kernels.ELEMENTWISE_THREADS,
        keyCache,
        valueCache,
        qkv,
        slotMapping,
        n,
        kvDim,
        rowStride,
        keyOffset,
        valueOffset);
  }

  /** {@code cast_f16_to_f32(float* out, const __half* in, long long count)}. */
  void castToFloat(CUstream_st stream, long out, long in, long count) {
    castToFloat.launch1d(stream, count, Kernels.ELEMENTWISE_THREADS, out, in, count);
  }

  /**
   * {@code sample_f32(const float* logits, int vocab, const float* temperatures, const int* top_ks,
   * const float* top_ps, const unsigned long long* seeds, const unsigned long long* offsets, int*
   * out)}, one block per row.
   */
  void sample(
      CUstream_st stream,
      int rows,
      long logits,
      int vocab,
      long temperatures,
      long topKs,
      long topPs,
      long seeds,
      long offsets,
      long out) {
    sample.launch(
        stream,
        rows,
        1,
        1,
        Kernels.SAMPLE_THREADS,
        0,
        logits,
        vocab,
        temperatures,
        topKs,
        topPs,
        seeds,
        offsets,
        out);
  }

  /**
   * {@code skinny_gemm_to_f32(float* y, const T* x, const T* w, int m, int in, int out, int
   * ksplit)}.
   */
  void skinnyGemmToFloat(
      CUstream_st stream, int multiprocessors, int m, int in, int out, long y, long x, long w) {
    SkinnyGemm.launch(skinnyGemmToFloat, stream, multiprocessors, m, in, out, y, x, w);
  }
}
