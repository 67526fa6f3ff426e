// Kernels of the GPU Llama runner. Every kernel comes in an fp32 and an fp16 storage flavour
// (suffix _f32 / _f16); arithmetic is always fp32. Loaded through the driver API by name, so all
// entry points are extern "C" with plain pointer/int/float arguments. The kernels only the tests
// launch are in test_kernels.cu; the device helpers both use are in kiln_common.cuh and
// kiln_skinny.cuh.
#include "kiln_common.cuh"
#include "kiln_skinny.cuh"

// ---- entry points ----------------------------------------------------------------------------

#define KILN_ELEMENTWISE(SUFFIX, T)                                                                  \
  extern "C" __global__ void embedding_gather_##SUFFIX(float* x, const T* table, const int* tokens,  \
                                                       int n, int dim) {                             \
    embedding_gather<T>(x, table, tokens, n, dim);                                                   \
  }                                                                                                  \
  extern "C" __global__ void rmsnorm_##SUFFIX(T* out, const float* x, const float* weight, int dim,  \
                                              float eps) {                                           \
    rmsnorm<T>(out, x, weight, dim, eps);                                                            \
  }                                                                                                  \
  extern "C" __global__ void add_rmsnorm_##SUFFIX(float* x, const T* delta, T* out,                \
                                                  const float* weight, int dim, float eps) {         \
    add_rmsnorm<T>(x, delta, out, weight, dim, eps);                                                 \
  }                                                                                                  \
  extern "C" __global__ void rope_kv_write_##SUFFIX(                                                 \
      T* qkv, const int* positions, const float* cos_table, const float* sin_table, T* key_cache,   \
      T* value_cache, const int* slot_mapping, int n, int num_heads, int num_kv_heads,              \
      int head_dim, int row_stride) {                                                                \
    rope_kv_write<T>(qkv, positions, cos_table, sin_table, key_cache, value_cache, slot_mapping, n,  \
                     num_heads, num_kv_heads, head_dim, row_stride);                                 \
  }                                                                                                  \
  extern "C" __global__ void add_bias_##SUFFIX(T* y, const T* bias, int n, int cols) {               \
    add_bias<T>(y, bias, n, cols);                                                                   \
  }                                                                                                  \
  extern "C" __global__ void silu_mul_##SUFFIX(T* out, const T* gate_up, int n, int ff) {            \
    silu_mul<T>(out, gate_up, n, ff);                                                                \
  }                                                                                                  \
  extern "C" __global__ void residual_add_##SUFFIX(float* x, const T* delta, long long count) {      \
    residual_add<T>(x, delta, (long)count);                                                          \
  }                                                                                                  \
  extern "C" __global__ void attention_combine_##SUFFIX(const float* part_acc, const float* part_ml, \
                                                        T* out, int num_heads, int head_dim,         \
                                                        int num_splits, int out_stride) {            \
    attention_combine<T>(part_acc, part_ml, out, num_heads, head_dim, num_splits, out_stride);       \
  }

#define KILN_ATTENTION(SUFFIX, T, HD)                                                                 \
  extern "C" __global__ void __launch_bounds__(kAttnWarps * 32) paged_attention_##SUFFIX##_hd##HD(   \
      const T* q, int q_stride, const T* key_cache, const T* value_cache, const int* block_tables,   \
      int table_stride, const int* row_seq, const int* context_lens, int num_heads,                  \
      int num_kv_heads, int block_size, float scale, int window, int num_splits, float* part_acc,    \
      float* part_ml, T* out, int out_stride, int decode) {                                          \
    paged_attention<T, HD>(q, q_stride, key_cache, value_cache, block_tables, table_stride, row_seq, \
                           context_lens, num_heads, num_kv_heads, block_size, scale, window,         \
                           num_splits, part_acc, part_ml, out, out_stride, decode);                  \
  }

// At least 4 blocks per SM (<= 128 registers): tighter bounds make the m = 8 path spill.
// TAG names the variant: "" takes up to kSkinnyMaxRows activation rows, "_m1" exactly one, with
// a register tile small enough for MIN_BLOCKS blocks per multiprocessor.
#define KILN_SKINNY_GEMM(SUFFIX, T, TAG, M, MIN_BLOCKS)                                             \
  extern "C" __global__ void __launch_bounds__(kSkinnyWarps * 32, MIN_BLOCKS)                      \
      skinny_gemm##TAG##_##SUFFIX(T* y, const T* x, const T* w, int m, int in, int out,             \
                                  int ksplit) {                                                      \
    skinny_vectors<T, T, kPlain, M>(y, x, w, nullptr, m, in, out, ksplit, {});                      \
  }                                                                                                  \
  extern "C" __global__ void __launch_bounds__(kSkinnyWarps * 32, MIN_BLOCKS)                      \
      skinny_gemm_bias##TAG##_##SUFFIX(T* y, const T* x, const T* w, const T* bias, int m, int in,  \
                                       int out, int ksplit) {                                        \
    skinny_vectors<T, T, kBias, M>(y, x, w, bias, m, in, out, ksplit, {});                          \
  }                                                                                                  \
  extern "C" __global__ void __launch_bounds__(kSkinnyWarps * 32, MIN_BLOCKS)                      \
      skinny_gemm_silu##TAG##_##SUFFIX(T* y, const T* x, const T* w, int m, int in, int out,        \
                                       int ksplit) {                                                 \
    skinny_vectors<T, T, kSiluGate, M>(y, x, w, nullptr, m, in, out, ksplit, {});                   \
  }                                                                                                  \
  extern "C" __global__ void __launch_bounds__(kSkinnyWarps * 32, MIN_BLOCKS)                      \
      skinny_gemm_rope_kv##TAG##_##SUFFIX(                                                           \
          T* y, const T* x, const T* w, int m, int in, int out, int ksplit, const int* positions,  \
          const float* cos_table, const float* sin_table, T* key_cache, T* value_cache,             \
          const int* slot_mapping, int num_heads, int num_kv_heads, int head_dim) {                 \
    RopeKv<T> rk{positions, cos_table,    sin_table, key_cache,   value_cache,                      \
                 slot_mapping, num_heads, num_kv_heads, head_dim};                                  \
    skinny_vectors<T, T, kRopeKv, M>(y, x, w, nullptr, m, in, out, ksplit, rk);                     \
  }                                                                                                  \
  extern "C" __global__ void __launch_bounds__(kSkinnyWarps * 32, MIN_BLOCKS)                      \
      skinny_gemm_logits##TAG##_##SUFFIX(float* y, const T* x, const T* w, int m, int in, int out,  \
                                         int ksplit, unsigned long long* keys) {                     \
    skinny_vectors<T, float, kLogitsArgmax, M>(y, x, w, nullptr, m, in, out, ksplit, {}, 0.f, keys); \
  }                                                                                                  \
  extern "C" __global__ void __launch_bounds__(kSkinnyWarps * 32, MIN_BLOCKS)                      \
      skinny_gemm_residual##TAG##_##SUFFIX(float* y, const T* x, const T* w, int m, int in, int out, \
                                           int ksplit) {                                             \
    skinny_vectors<T, float, kResidual, M>(y, x, w, nullptr, m, in, out, ksplit, {});               \
  }                                                                                                  \
  extern "C" __global__ void __launch_bounds__(kSkinnyWarps * 32, MIN_BLOCKS)                      \
      skinny_gemm_silu_normed##TAG##_##SUFFIX(T* y, const float* x, const T* w, int m, int in,      \
                                              int out, int ksplit, float eps) {                      \
    skinny_vectors<T, T, kSiluGate, M, true>(y, x, w, nullptr, m, in, out, ksplit, {}, eps);        \
  }                                                                                                  \
  extern "C" __global__ void __launch_bounds__(kSkinnyWarps * 32, MIN_BLOCKS)                      \
      skinny_gemm_rope_kv_normed##TAG##_##SUFFIX(                                                    \
          T* y, const float* x, const T* w, int m, int in, int out, int ksplit,                     \
          const int* positions, const float* cos_table, const float* sin_table, T* key_cache,      \
          T* value_cache, const int* slot_mapping, int num_heads, int num_kv_heads, int head_dim,  \
          float eps) {                                                                               \
    RopeKv<T> rk{positions, cos_table,    sin_table, key_cache,   value_cache,                      \
                 slot_mapping, num_heads, num_kv_heads, head_dim};                                  \
    skinny_vectors<T, T, kRopeKv, M, true>(y, x, w, nullptr, m, in, out, ksplit, rk, eps);          \
  }

KILN_ELEMENTWISE(f32, float)
KILN_ELEMENTWISE(f16, __half)
KILN_ATTENTION(f32, float, 32)
KILN_ATTENTION(f32, float, 64)
KILN_ATTENTION(f32, float, 128)
KILN_ATTENTION(f16, __half, 32)
KILN_ATTENTION(f16, __half, 64)
KILN_ATTENTION(f16, __half, 128)
KILN_SKINNY_GEMM(f32, float, , kSkinnyMaxRows, 4)
KILN_SKINNY_GEMM(f16, __half, , kSkinnyMaxRows, 4)
KILN_SKINNY_GEMM(f32, float, _m1, 1, 8)
KILN_SKINNY_GEMM(f16, __half, _m1, 1, 8)

// The tensor-core builds for 2 to 8 rows, fp16 only (skinny_mma): the same signatures as the
// skinny_gemm* entry points, so the host launches either; ksplit is the warps per block there.
extern "C" __global__ void KILN_SKINNY_MMA_BOUNDS skinny_gemm_mma_f16(__half* y, const __half* x,
    const __half* w, int m, int in, int out, int ksplit) {
  skinny_mma<__half, kPlain>(y, x, w, nullptr, m, in, out, {}, nullptr);
}
extern "C" __global__ void KILN_SKINNY_MMA_BOUNDS skinny_gemm_bias_mma_f16(__half* y,
    const __half* x, const __half* w, const __half* bias, int m, int in, int out, int ksplit) {
  skinny_mma<__half, kBias>(y, x, w, bias, m, in, out, {}, nullptr);
}
extern "C" __global__ void KILN_SKINNY_MMA_BOUNDS skinny_gemm_silu_mma_f16(__half* y,
    const __half* x, const __half* w, int m, int in, int out, int ksplit) {
  skinny_mma<__half, kSiluGate>(y, x, w, nullptr, m, in, out, {}, nullptr);
}
extern "C" __global__ void KILN_SKINNY_MMA_BOUNDS skinny_gemm_rope_kv_mma_f16(__half* y,
    const __half* x, const __half* w, int m, int in, int out, int ksplit, const int* positions,
    const float* cos_table, const float* sin_table, __half* key_cache, __half* value_cache,
    const int* slot_mapping, int num_heads, int num_kv_heads, int head_dim) {
  RopeKv<__half> rk{positions,    cos_table, sin_table,    key_cache, value_cache,
                    slot_mapping, num_heads, num_kv_heads, head_dim};
  skinny_mma<__half, kRopeKv>(y, x, w, nullptr, m, in, out, rk, nullptr);
}
extern "C" __global__ void KILN_SKINNY_MMA_BOUNDS skinny_gemm_logits_mma_f16(float* y,
    const __half* x, const __half* w, int m, int in, int out, int ksplit,
    unsigned long long* keys) {
  skinny_mma<float, kLogitsArgmax>(y, x, w, nullptr, m, in, out, {}, keys);
}
extern "C" __global__ void KILN_SKINNY_MMA_BOUNDS skinny_gemm_residual_mma_f16(float* y,
    const __half* x, const __half* w, int m, int in, int out, int ksplit) {
  skinny_mma<float, kResidual>(y, x, w, nullptr, m, in, out, {}, nullptr);
}
extern "C" __global__ void KILN_SKINNY_MMA_BOUNDS skinny_gemm_silu_normed_mma_f16(__half* y,
    const float* x, const __half* w, int m, int in, int out, int ksplit, float eps) {
  skinny_mma<__half, kSiluGate, true>(y, x, w, nullptr, m, in, out, {}, nullptr, eps);
}
extern "C" __global__ void KILN_SKINNY_MMA_BOUNDS skinny_gemm_rope_kv_normed_mma_f16(__half* y,
    const float* x, const __half* w, int m, int in, int out, int ksplit, const int* positions,
    const float* cos_table, const float* sin_table, __half* key_cache, __half* value_cache,
    const int* slot_mapping, int num_heads, int num_kv_heads, int head_dim, float eps) {
  RopeKv<__half> rk{positions,    cos_table, sin_table,    key_cache, value_cache,
                    slot_mapping, num_heads, num_kv_heads, head_dim};
  skinny_mma<__half, kRopeKv, true>(y, x, w, nullptr, m, in, out, rk, nullptr, eps);
}

// The int8 LM head of a draft (skinny_logits_i8): fp16 activations, int8 codes, a scale per row.
#define KILN_LOGITS_I8(TAG, M, MIN_BLOCKS)                                                          \
  extern "C" __global__ void __launch_bounds__(kSkinnyWarps * 32, MIN_BLOCKS)                      \
      skinny_gemm_logits_i8##TAG##_f16(float* y, const __half* x, const int8_t* w,                  \
                                       const float* scales, int m, int in, int out, int ksplit,      \
                                       unsigned long long* keys) {                                   \
    skinny_logits_i8<M>(y, x, w, scales, m, in, out, ksplit, keys);                                 \
  }
KILN_LOGITS_I8(, kSkinnyMaxRows, 4)
KILN_LOGITS_I8(_m1, 1, 8)

extern "C" __global__ void cast_f32_to_f16(__half* out, const float* in, long long count) {
  grid_dependency_sync();
  long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i < count) out[i] = __float2half_rn(in[i]);
}

// out[r] = x[rows[r]]: the last token of each chunk that wants logits.
extern "C" __global__ void gather_rows_f32(float* out, const float* x, const int* rows, int n, int dim) {
  grid_dependency_sync();
  long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= (long)n * dim) return;
  int r = (int)(i / dim), e = (int)(i % dim);
  out[i] = x[(long)rows[r] * dim + e];
}

// One block of kSampleThreads per row; ties go to the lower token id.
extern "C" __global__ void __launch_bounds__(kSampleThreads) argmax_f32(const float* logits, int vocab, int* out) {
  grid_dependency_sync();
  __shared__ float s_val[kSampleThreads];
  __shared__ int s_idx[kSampleThreads];
  int best = block_argmax(logits + (long)blockIdx.x * vocab, vocab, s_val, s_idx);
  if (threadIdx.x == 0) out[blockIdx.x] = best;
}
