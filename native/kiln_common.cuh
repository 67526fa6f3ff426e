// Device helpers shared by the runner's kernels (llm_kernels.cu) and the kernels only the tests
// launch (test_kernels.cu): conversions, reductions, the programmatic-launch wait, RoPE's
// rotation and fused K/V epilogue, paged attention and the argmax (the skinny GEMM is in
// kiln_skinny.cuh). Everything here is a template, inline or in an anonymous namespace: each .cu
// compiles its own copy.
#pragma once

#include <cuda_fp16.h>
#include <stdint.h>

namespace {

__device__ __forceinline__ float to_float(float v) { return v; }
__device__ __forceinline__ float to_float(__half v) { return __half2float(v); }
template <typename T> __device__ __forceinline__ T from_float(float v);
template <> __device__ __forceinline__ float from_float<float>(float v) { return v; }
template <> __device__ __forceinline__ __half from_float<__half>(float v) { return __float2half_rn(v); }

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Sum over the whole block; every thread gets the result. blockDim.x is a multiple of 32.
__device__ float block_sum(float v, float* scratch) {
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = warp_sum(v);
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  float total = 0.f;
  for (int w = 0; w < warps; ++w) total += scratch[w];
  return total;
}

// Programmatic dependent launch (sm_90+). A kernel launched with the programmatic-serialization
// attribute may start while the previous kernel of the stream still runs. It lets the next kernel
// launch at once, before its own wait: that one's wait still holds it until this whole grid has
// finished (which in turn waited for the one before), so every kernel reads and writes memory
// only after all earlier ones, while the launches and the weight loads issued ahead of the waits
// overlap the kernels in flight. Without the attribute, or below sm_90, both are no-ops.
__device__ __forceinline__ void grid_dependency_sync() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

// ---- element-wise and row kernels ----------------------------------------------------------

template <typename T>
__device__ void embedding_gather(float* x, const T* table, const int* tokens, int n, int dim) {
  grid_dependency_sync();
  long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= (long)n * dim) return;
  int t = (int)(i / dim), e = (int)(i % dim);
  x[i] = to_float(table[(long)tokens[t] * dim + e]);
}

// Loop iterations unrolled in the norms, so that a thread's loads of a row go out together rather
// than one memory latency after another (a 2048-wide row is 8 per thread of 256).
constexpr int kNormUnroll = 8;

// One block per row: out = weight * (x / sqrt(mean(x^2) + eps)).
template <typename T>
__device__ void rmsnorm(T* out, const float* x, const float* weight, int dim, float eps) {
  grid_dependency_sync();
  __shared__ float scratch[32];
  const float* row = x + (long)blockIdx.x * dim;
  float ss = 0.f;
#pragma unroll kNormUnroll
  for (int i = threadIdx.x; i < dim; i += blockDim.x) ss += row[i] * row[i];
  ss = block_sum(ss, scratch);
  float scale = 1.0f / sqrtf(ss / dim + eps);
  T* o = out + (long)blockIdx.x * dim;
#pragma unroll kNormUnroll
  for (int i = threadIdx.x; i < dim; i += blockDim.x) o[i] = from_float<T>(weight[i] * (row[i] * scale));
}

// Fused residual step: x += delta, then out = rmsnorm(x) (one block per row). Saves a pass over
// x and a launch per norm; the arithmetic is that of residual_add followed by rmsnorm.
template <typename T>
__device__ void add_rmsnorm(float* x, const T* delta, T* out, const float* weight, int dim, float eps) {
  grid_dependency_sync();
  __shared__ float scratch[32];
  float* row = x + (long)blockIdx.x * dim;
  const T* d = delta + (long)blockIdx.x * dim;
  float ss = 0.f;
#pragma unroll kNormUnroll
  for (int i = threadIdx.x; i < dim; i += blockDim.x) {
    float v = row[i] + to_float(d[i]);
    row[i] = v;
    ss += v * v;
  }
  ss = block_sum(ss, scratch);
  float scale = 1.0f / sqrtf(ss / dim + eps);
  T* o = out + (long)blockIdx.x * dim;
#pragma unroll kNormUnroll
  for (int i = threadIdx.x; i < dim; i += blockDim.x) o[i] = from_float<T>(weight[i] * (row[i] * scale));
}

template <typename T>
__device__ void add_bias(T* y, const T* bias, int n, int cols) {
  grid_dependency_sync();
  long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= (long)n * cols) return;
  y[i] = from_float<T>(to_float(y[i]) + to_float(bias[i % cols]));
}

// One RoPE rotation pair, each product and sum rounded on its own (no FMA contraction), so that
// every kernel that rotates gets the same bits.
__device__ __forceinline__ void rotate(float a, float b, float co, float si, float& ra, float& rb) {
  ra = __fsub_rn(__fmul_rn(a, co), __fmul_rn(b, si));
  rb = __fadd_rn(__fmul_rn(b, co), __fmul_rn(a, si));
}

// rope_kv_write's tables and pool: what RoPE and the K/V write need besides the q/k/v values.
template <typename T>
struct RopeKv {
  const int* positions;
  const float* cos_table;
  const float* sin_table;
  T* key_cache;
  T* value_cache;
  const int* slot_mapping;
  int num_heads, num_kv_heads, head_dim;
};

// One rotation pair of row t of qkv (a at column c, b at c + half) of head `head`: q and k heads
// rotate, the rotated k and the v heads go to the pool slot slot_mapping[t] (negative: not
// stored), and the row gets the pair back. Shared by rope_kv_write and the fused QKV product.
template <typename T>
__device__ __forceinline__ void rope_kv_epilogue(T* row, T ta, T tb, long c, int head, int d, int half,
                                                 int t, const RopeKv<T>& rk) {
  int slot = rk.slot_mapping[t];
  long kv_dim = (long)rk.num_kv_heads * rk.head_dim;
  int qk_heads = rk.num_heads + rk.num_kv_heads;
  if (head >= qk_heads) {  // a v head: stored as it is
    row[c] = ta;
    row[c + half] = tb;
    if (slot >= 0) {
      T* dst = rk.value_cache + slot * kv_dim + (long)(head - qk_heads) * rk.head_dim;
      dst[d] = ta;
      dst[d + half] = tb;
    }
    return;
  }
  long at = (long)rk.positions[t] * half + d;
  float co = rk.cos_table[at], si = rk.sin_table[at];
  float fa, fb;
  rotate(to_float(ta), to_float(tb), co, si, fa, fb);
  T ra = from_float<T>(fa);
  T rb = from_float<T>(fb);
  row[c] = ra;
  row[c + half] = rb;
  if (head >= rk.num_heads && slot >= 0) {
    T* dst = rk.key_cache + slot * kv_dim + (long)(head - rk.num_heads) * rk.head_dim;
    dst[d] = ra;
    dst[d + half] = rb;
  }
}

// rope and kv_write in one pass over a stored qkv, a thread per rotation pair.
template <typename T>
__device__ void rope_kv_write(T* qkv, const int* positions, const float* cos_table,
                              const float* sin_table, T* key_cache, T* value_cache,
                              const int* slot_mapping, int n, int num_heads, int num_kv_heads,
                              int head_dim, int row_stride) {
  grid_dependency_sync();
  int half = head_dim / 2;
  int heads = num_heads + 2 * num_kv_heads;
  long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= (long)n * heads * half) return;
  int d = (int)(i % half);
  int h = (int)((i / half) % heads);
  int t = (int)(i / ((long)half * heads));
  T* row = qkv + (long)t * row_stride;
  long c = (long)h * head_dim + d;
  RopeKv<T> rk{positions,    cos_table, sin_table,    key_cache, value_cache,
               slot_mapping, num_heads, num_kv_heads, head_dim};
  rope_kv_epilogue(row, row[c], row[c + half], c, h, d, half, t, rk);
}

// gate_up rows hold [gate | up]; out = silu(gate) * up.
template <typename T>
__device__ void silu_mul(T* out, const T* gate_up, int n, int ff) {
  grid_dependency_sync();
  long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= (long)n * ff) return;
  int t = (int)(i / ff), j = (int)(i % ff);
  float g = to_float(gate_up[(long)t * 2 * ff + j]);
  float u = to_float(gate_up[(long)t * 2 * ff + ff + j]);
  out[i] = from_float<T>(g / (1.0f + expf(-g)) * u);
}

template <typename T>
__device__ void residual_add(float* x, const T* delta, long count) {
  grid_dependency_sync();
  long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i < count) x[i] += to_float(delta[i]);
}

// ---- paged attention -------------------------------------------------------------------------

template <typename T, int EPT> struct Vec;
template <> struct Vec<float, 1> {
  static __device__ void load(const float* p, float* o) { o[0] = p[0]; }
};
template <> struct Vec<float, 2> {
  static __device__ void load(const float* p, float* o) {
    float2 v = *reinterpret_cast<const float2*>(p);
    o[0] = v.x; o[1] = v.y;
  }
};
template <> struct Vec<float, 4> {
  static __device__ void load(const float* p, float* o) {
    float4 v = *reinterpret_cast<const float4*>(p);
    o[0] = v.x; o[1] = v.y; o[2] = v.z; o[3] = v.w;
  }
};
template <> struct Vec<__half, 1> {
  static __device__ void load(const __half* p, float* o) { o[0] = __half2float(p[0]); }
};
template <> struct Vec<__half, 2> {
  static __device__ void load(const __half* p, float* o) {
    float2 v = __half22float2(*reinterpret_cast<const __half2*>(p));
    o[0] = v.x; o[1] = v.y;
  }
};
template <> struct Vec<__half, 4> {
  static __device__ void load(const __half* p, float* o) {
    uint2 raw = *reinterpret_cast<const uint2*>(p);
    float2 a = __half22float2(*reinterpret_cast<const __half2*>(&raw.x));
    float2 b = __half22float2(*reinterpret_cast<const __half2*>(&raw.y));
    o[0] = a.x; o[1] = a.y; o[2] = b.x; o[3] = b.y;
  }
};

constexpr int kAttnWarps = 4;
constexpr int kAttnBatch = 4;
constexpr int kMaxGroup = 8;

// One block per (kv head, query row, split). A query row is a decode sequence or one prefill
// token; it attends to positions [start, context_len) of sequence row_seq[row] through that
// sequence's block table, which already holds the row's own K/V (written before this kernel).
// The split's positions go round-robin to the warps; each warp keeps an online softmax for the
// query heads of its group, lanes holding head_dim/32 elements each. With one split the result
// is written to out; otherwise unnormalized partials go to part_acc/part_ml for the combine.
template <typename T, int HD>
__device__ void paged_attention(const T* q, int q_stride, const T* key_cache, const T* value_cache,
                                const int* block_tables, int table_stride, const int* row_seq,
                                const int* context_lens, int num_heads, int num_kv_heads,
                                int block_size, float scale, int window, int num_splits,
                                float* part_acc, float* part_ml, T* out, int out_stride,
                                int decode) {
  constexpr int EPT = HD / 32;
  __shared__ float sm_m[kAttnWarps][kMaxGroup];
  __shared__ float sm_l[kAttnWarps][kMaxGroup];
  __shared__ float sm_acc[kAttnWarps][kMaxGroup][HD];

  int kvh = blockIdx.x, row = blockIdx.y, split = blockIdx.z;
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  int group = num_heads / num_kv_heads;
  int seq = row_seq[row];
  int ctx = context_lens[row];
  int start = window > 0 ? max(0, ctx - window) : 0;
  int per = (ctx - start + num_splits - 1) / num_splits;
  int s0 = start + split * per;
  int s1 = min(ctx, s0 + per);

  // A warp takes positions s0 + warp, + kAttnWarps, ... in order, loading the K/V of kAttnBatch of
  // them before using any: one memory latency per batch instead of one per position. The step
  // inputs (row_seq, context_lens, tables) come from a copy before the first kernel, and in a
  // decode step every position but a row's last holds K/V of earlier steps: those loads go out
  // before grid_dependency_sync, overlapping the QKV kernel that writes the last one.
  const int* table = block_tables + (long)seq * table_stride;
  float k[kAttnBatch][EPT], v[kAttnBatch][EPT];
  auto load = [&](int t0, int from, int to) {
#pragma unroll
    for (int j = 0; j < kAttnBatch; ++j) {
      int t = t0 + j * kAttnWarps;
      if (t >= from && t < to) {
        int block = table[t / block_size];
        long base = (((long)block * block_size + t % block_size) * num_kv_heads + kvh) * HD + lane * EPT;
        Vec<T, EPT>::load(key_cache + base, k[j]);
        Vec<T, EPT>::load(value_cache + base, v[j]);
      }
    }
  };
  int fresh = decode ? max(s0, ctx - 1) : s0;  // positions from here on are read after the wait
  load(s0 + warp, s0, fresh);
  grid_dependency_sync();

  float qr[kMaxGroup][EPT];
#pragma unroll
  for (int g = 0; g < kMaxGroup; ++g) {
    if (g < group) {
      Vec<T, EPT>::load(q + (long)row * q_stride + (long)(kvh * group + g) * HD + lane * EPT, qr[g]);
#pragma unroll
      for (int e = 0; e < EPT; ++e) qr[g][e] *= scale;
    }
  }
  float m[kMaxGroup], l[kMaxGroup], acc[kMaxGroup][EPT];
#pragma unroll
  for (int g = 0; g < kMaxGroup; ++g) {
    m[g] = -INFINITY;
    l[g] = 0.f;
#pragma unroll
    for (int e = 0; e < EPT; ++e) acc[g][e] = 0.f;
  }

  for (int t0 = s0 + warp; t0 < s1; t0 += kAttnWarps * kAttnBatch) {
    load(t0, t0 == s0 + warp ? fresh : s0, s1);
#pragma unroll
    for (int j = 0; j < kAttnBatch; ++j) {
      if (t0 + j * kAttnWarps >= s1) break;
#pragma unroll
      for (int g = 0; g < kMaxGroup; ++g) {
        if (g < group) {
          float s = 0.f;
#pragma unroll
          for (int e = 0; e < EPT; ++e) s += qr[g][e] * k[j][e];
          s = warp_sum(s);
          float m_new = fmaxf(m[g], s);
          float correction = expf(m[g] - m_new);
          float p = expf(s - m_new);
          l[g] = l[g] * correction + p;
#pragma unroll
          for (int e = 0; e < EPT; ++e) acc[g][e] = acc[g][e] * correction + p * v[j][e];
          m[g] = m_new;
        }
      }
    }
  }

#pragma unroll
  for (int g = 0; g < kMaxGroup; ++g) {
    if (g < group) {
      if (lane == 0) {
        sm_m[warp][g] = m[g];
        sm_l[warp][g] = l[g];
      }
#pragma unroll
      for (int e = 0; e < EPT; ++e) sm_acc[warp][g][lane * EPT + e] = acc[g][e];
    }
  }
  __syncthreads();

  for (int i = threadIdx.x; i < group * HD; i += blockDim.x) {
    int g = i / HD, d = i % HD;
    float mx = -INFINITY;
    for (int w = 0; w < kAttnWarps; ++w) mx = fmaxf(mx, sm_m[w][g]);
    float sum_l = 0.f, sum_a = 0.f;
    if (mx != -INFINITY) {
      for (int w = 0; w < kAttnWarps; ++w) {
        float f = expf(sm_m[w][g] - mx);
        sum_l += sm_l[w][g] * f;
        sum_a += sm_acc[w][g][d] * f;
      }
    }
    int head = kvh * group + g;
    if (num_splits == 1) {
      out[(long)row * out_stride + (long)head * HD + d] = from_float<T>(sum_l > 0.f ? sum_a / sum_l : 0.f);
    } else {
      long at = ((long)row * num_heads + head) * num_splits + split;
      part_acc[at * HD + d] = sum_a;
      if (d == 0) {
        part_ml[at * 2] = mx;
        part_ml[at * 2 + 1] = sum_l;
      }
    }
  }
}

// Merges the splits of one (head, row): grid (num_heads, rows), block head_dim threads. The
// splits' partials are loaded kCombineBatch at a time, all in flight together.
constexpr int kCombineBatch = 16;

template <typename T>
__device__ void attention_combine(const float* part_acc, const float* part_ml, T* out, int num_heads,
                                  int head_dim, int num_splits, int out_stride) {
  grid_dependency_sync();
  int head = blockIdx.x, row = blockIdx.y, d = threadIdx.x;
  if (d >= head_dim) return;
  long base = ((long)row * num_heads + head) * num_splits;
  float mx = -INFINITY;
  for (int s0 = 0; s0 < num_splits; s0 += kCombineBatch) {
#pragma unroll
    for (int j = 0; j < kCombineBatch; ++j)
      if (s0 + j < num_splits) mx = fmaxf(mx, part_ml[(base + s0 + j) * 2]);
  }
  float sum_l = 0.f, sum_a = 0.f;
  if (mx != -INFINITY) {
    for (int s0 = 0; s0 < num_splits; s0 += kCombineBatch) {
      float m[kCombineBatch], l[kCombineBatch], a[kCombineBatch];
#pragma unroll
      for (int j = 0; j < kCombineBatch; ++j) {
        if (s0 + j < num_splits) {
          long at = base + s0 + j;
          m[j] = part_ml[at * 2];
          l[j] = part_ml[at * 2 + 1];
          a[j] = part_acc[at * head_dim + d];
        }
      }
#pragma unroll
      for (int j = 0; j < kCombineBatch; ++j) {
        if (s0 + j < num_splits) {
          float f = expf(m[j] - mx);
          sum_l += l[j] * f;
          sum_a += a[j] * f;
        }
      }
    }
  }
  out[(long)row * out_stride + (long)head * head_dim + d] = from_float<T>(sum_l > 0.f ? sum_a / sum_l : 0.f);
}

// ---- sampling --------------------------------------------------------------------------------

// Float keys whose unsigned order is the float order.
__device__ __forceinline__ uint32_t ordered(float f) {
  uint32_t u = __float_as_uint(f);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

// What a greedy pick returns for a row holding a NaN or an infinity (Java's ModelRunner.NON_FINITE):
// such a row is a broken model, never a token.
constexpr int kNonFinite = -2;

// The first largest logit of a row, or kNonFinite.
__device__ int block_argmax(const float* row, int vocab, float* s_val, int* s_idx) {
  float best = -INFINITY;
  int best_i = 0x7fffffff;
  int non_finite = 0;
  for (int i = threadIdx.x; i < vocab; i += blockDim.x) {
    float v = row[i];
    non_finite |= !isfinite(v);
    if (v > best || (v == best && i < best_i)) { best = v; best_i = i; }
  }
  s_val[threadIdx.x] = best;
  s_idx[threadIdx.x] = best_i;
  non_finite = __syncthreads_or(non_finite);
  for (int stride = blockDim.x / 2; stride > 0; stride >>= 1) {
    if (threadIdx.x < stride) {
      float ov = s_val[threadIdx.x + stride];
      int oi = s_idx[threadIdx.x + stride];
      if (ov > s_val[threadIdx.x] || (ov == s_val[threadIdx.x] && oi < s_idx[threadIdx.x])) {
        s_val[threadIdx.x] = ov;
        s_idx[threadIdx.x] = oi;
      }
    }
    __syncthreads();
  }
  int result = non_finite ? kNonFinite : s_idx[0] == 0x7fffffff ? 0 : s_idx[0];
  __syncthreads();
  return result;
}

constexpr int kSampleThreads = 1024;

}  // namespace
