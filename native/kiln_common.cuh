// Device helpers shared by the runner's kernels (llm_kernels.cu) and the kernels only the tests
// launch (test_kernels.cu): conversions, reductions, the programmatic-launch wait, RoPE's
// rotation and fused K/V epilogue, paged attention, the argmax and the skinny GEMM. Everything
// here is a template, inline or in an anonymous namespace: each .cu compiles its own copy.
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

// ---- skinny GEMM ------------------------------------------------------------------------------

// Decode steps multiply a handful of activation rows by whole weight matrices: a GEMV-like,
// bandwidth-bound product that cuBLAS serves poorly at such small M.
constexpr int kSkinnyMaxRows = 8;
constexpr int kSkinnyWarps = 4;   // most warps per block; the host may launch fewer
constexpr int kSkinnyUnroll = 8;  // 16-byte weight loads in flight per lane

enum SkinnyEpilogue { kPlain, kBias, kSiluGate, kRopeKv, kResidual, kLogitsArgmax };

template <int BYTES> struct Bits;
template <> struct Bits<16> { using type = uint4; };
template <> struct Bits<8> { using type = uint2; };
template <> struct Bits<4> { using type = unsigned int; };
template <> struct Bits<2> { using type = unsigned short; };

// VEC consecutive floats from vector v of x (x 16-byte aligned, rows a multiple of VEC long).
template <int VEC>
__device__ __forceinline__ void load_floats(const float* x, int v, float* out) {
  const float* p = x + (long)v * VEC;
  if constexpr (VEC % 4 == 0) {
#pragma unroll
    for (int i = 0; i < VEC / 4; ++i) {
      float4 f = __ldg(reinterpret_cast<const float4*>(p) + i);
      out[4 * i] = f.x;
      out[4 * i + 1] = f.y;
      out[4 * i + 2] = f.z;
      out[4 * i + 3] = f.w;
    }
  } else if constexpr (VEC == 2) {
    float2 f = __ldg(reinterpret_cast<const float2*>(p));
    out[0] = f.x;
    out[1] = f.y;
  } else {
    out[0] = __ldg(p);
  }
}

template <typename T, int VEC>
__device__ __forceinline__ void unpack(const typename Bits<VEC * sizeof(T)>::type& bits, float* out) {
  T v[VEC];
  memcpy(v, &bits, sizeof bits);
#pragma unroll
  for (int e = 0; e < VEC; ++e) out[e] = to_float(v[e]);
}

// One output of a skinny product from its fp32 sum: y[t][col] as the epilogue says (see
// skinny_rows). For kSiluGate and kRopeKv `partner` is the sum of the paired weight row (the up
// row, or the second row of the rotation pair), and `col` for kRopeKv is the first row of the pair.
// Both builds, FMA and tensor-core, end here, so they round and store alike.
template <typename T, typename TOut, SkinnyEpilogue EPI>
__device__ __forceinline__ void skinny_store(TOut* y, int t, int out, long col, float sum,
                                             float partner, const T* bias, const RopeKv<T>& rk,
                                             int head, int d, int half, unsigned long long* keys) {
  if constexpr (EPI == kSiluGate) {
    float g = to_float(from_float<T>(sum));
    float u = to_float(from_float<T>(partner));
    y[(long)t * out + col] = from_float<TOut>(g / (1.0f + expf(-g)) * u);
  } else if constexpr (EPI == kRopeKv) {
    rope_kv_epilogue(y + (long)t * out, from_float<T>(sum), from_float<T>(partner), col, head, d,
                     half, t, rk);
  } else if constexpr (EPI == kResidual) {
    y[(long)t * out + col] += to_float(from_float<T>(sum));
  } else if constexpr (EPI == kLogitsArgmax) {
    y[(long)t * out + col] = sum;
    unsigned long long key = isfinite(sum)
        ? (unsigned long long)ordered(sum) << 32 | (0xffffffffu - (unsigned)col)
        : ~0ull;
    if (key > *(volatile unsigned long long*)(keys + t)) atomicMax(keys + t, key);
  } else {
    float b = 0.f;
    if constexpr (EPI == kBias) b = to_float(bias[col]);
    y[(long)t * out + col] = from_float<TOut>(sum + b);
  }
}

// A warp (or ksplit warps) per output row: y[t][row] = x[t] . w[row] (+ bias[row]) for the m <= 8
// rows of x.
// kSiluGate reads two weight rows, gate `row` and up `row + out`, and writes
// silu(gate) * up with both products rounded to T first, exactly as silu_mul on the plain
// product would. kRopeKv is the QKV projection with rope_kv_write fused: a warp takes the two
// rows (d, d + head_dim/2) of one head that RoPE rotates together, rounds both products to T,
// rotates q and k heads, writes the row into y and k/v heads into their pool slot, with
// rope_kv_write's arithmetic. kResidual adds the product, rounded to T, into the fp32 residual
// stream y, as add_rmsnorm adds a stored projection. kLogitsArgmax writes fp32 logits and keeps
// the greedy token of each activation row in keys[t]: (ordered logit << 32 | ~index), raised with
// atomicMax only when a warp's logit beats the key it reads, so few warps touch it. The largest
// key is the first largest logit; a NaN or infinite logit sets the key to all ones, which no finite
// key reaches (the host reads it as non-finite); keys start at zero. The argmax kernel is saved.
// NORMED products read the fp32 residual stream as x, their weight rows carrying the RMSNorm
// weight folded in (w' = w * g), and scale by the norm: y = (x . w') / sqrt(mean(x^2) + eps). A
// warp sums x^2 over the very elements it multiplies, so the norm costs no loads and no pass of its
// own (a norm per block before the product measured slower on an H200).
// Lanes take the row's VEC-element vectors in turn, UNROLL loads in flight each,
// and use every weight vector for all m activation rows. Long rows are split over `ksplit` warps
// of a block (1, 2 or 4), each taking one contiguous part; their sums meet in shared memory in
// part order, so a given ksplit always gives the same bits. Weights stream through once
// (evict-first); activations are reread by every warp and stay in L1/L2. The first weight loads
// go out before grid_dependency_sync: weights never depend on the previous kernel, so under a
// programmatic launch they stream while it finishes. (Prefetching the later rounds into L2 as
// well measured slower on an H200, most likely by pushing the small kernels' data out of L2.)
template <typename T, int VEC, typename TOut, SkinnyEpilogue EPI, int M, bool NORMED, typename TX>
__device__ void skinny_rows(TOut* y, const TX* x, const T* w, const T* bias, int m, int in, int out,
                            int ksplit, const RopeKv<T>& rk, float eps, unsigned long long* keys) {
  using B = typename Bits<VEC * sizeof(T)>::type;
  constexpr int ROWS = EPI == kSiluGate || EPI == kRopeKv ? 2 : 1;
  constexpr int UNROLL = kSkinnyUnroll / ROWS;
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  int kshift = ksplit == 4 ? 2 : ksplit == 2 ? 1 : 0;
  int row = blockIdx.x * ((blockDim.x >> 5) >> kshift) + (warp >> kshift);
  int part = warp & (ksplit - 1);
  long rows[ROWS];  // the weight rows (and, but for kSiluGate, output columns) of this warp
  bool active;
  int half = 0, head = 0, d = 0;
  if constexpr (EPI == kRopeKv) {
    half = rk.head_dim / 2;
    head = row / half;
    d = row % half;
    active = row < out / 2;
    rows[0] = (long)head * rk.head_dim + d;
    rows[1] = rows[0] + half;
  } else {
    active = row < out;
#pragma unroll
    for (int r = 0; r < ROWS; ++r) rows[r] = (long)row + (long)r * out;
  }
  int vectors = in / VEC;
  int chunk = (((vectors + ksplit - 1) >> kshift) + 31) & ~31;  // whole lane rounds per part
  int begin = part * chunk;
  int end = min(vectors, begin + chunk);
  const B* wr[ROWS];
#pragma unroll
  for (int r = 0; r < ROWS; ++r) wr[r] = reinterpret_cast<const B*>(w + rows[r] * in);
  B raw[ROWS][UNROLL];
  auto load = [&](int base) {
#pragma unroll
    for (int u = 0; u < UNROLL; ++u) {
      int v = base + u * 32;
#pragma unroll
      for (int r = 0; r < ROWS; ++r) raw[r][u] = active && v < end ? __ldcs(wr[r] + v) : B{};
    }
  };
  load(begin + lane);
  grid_dependency_sync();
  // Whole warps only from here, so the shuffles below see every lane.
  if (!active && ksplit == 1) return;

  float acc[ROWS][M], ss[M];
#pragma unroll
  for (int t = 0; t < M; ++t) {
    ss[t] = 0.f;
#pragma unroll
    for (int r = 0; r < ROWS; ++r) acc[r][t] = 0.f;
  }
  for (int base = begin + lane; active && base < end; base += 32 * UNROLL) {
    if (base != begin + lane) load(base);
#pragma unroll
    for (int u = 0; u < UNROLL; ++u) {
      int v = base + u * 32;
      if (v < end) {
        float wf[ROWS][VEC];
#pragma unroll
        for (int r = 0; r < ROWS; ++r) unpack<T, VEC>(raw[r][u], wf[r]);
#pragma unroll
        for (int t = 0; t < M; ++t) {
          if (t < m) {
            float xf[VEC];
            if constexpr (NORMED) {
              load_floats<VEC>(x + (long)t * in, v, xf);
#pragma unroll
              for (int e = 0; e < VEC; ++e) ss[t] = fmaf(xf[e], xf[e], ss[t]);
            } else {
              unpack<T, VEC>(__ldg(reinterpret_cast<const B*>(x + (long)t * in) + v), xf);
            }
#pragma unroll
            for (int r = 0; r < ROWS; ++r)
#pragma unroll
              for (int e = 0; e < VEC; ++e) acc[r][t] = fmaf(wf[r][e], xf[e], acc[r][t]);
          }
        }
      }
    }
  }
  float sum[ROWS][M];
#pragma unroll
  for (int r = 0; r < ROWS; ++r)
#pragma unroll
    for (int t = 0; t < M; ++t) sum[r][t] = t < m ? warp_sum(acc[r][t]) : 0.f;
  float sumsq[M];
#pragma unroll
  for (int t = 0; t < M; ++t) sumsq[t] = NORMED && t < m ? warp_sum(ss[t]) : 0.f;
  if (ksplit > 1) {
    // [warp][0..ROWS-1] the products, [warp][2] the sum of squares of x (NORMED)
    __shared__ float parts[kSkinnyWarps][3][kSkinnyMaxRows];
    if (lane == 0) {
#pragma unroll
      for (int t = 0; t < M; ++t) {
#pragma unroll
        for (int r = 0; r < ROWS; ++r) parts[warp][r][t] = sum[r][t];
        if constexpr (NORMED) parts[warp][2][t] = sumsq[t];
      }
    }
    __syncthreads();
    if (part != 0 || !active) return;
    for (int p = 1; p < ksplit; ++p)
#pragma unroll
      for (int t = 0; t < M; ++t) {
#pragma unroll
        for (int r = 0; r < ROWS; ++r) sum[r][t] += parts[warp + p][r][t];
        if constexpr (NORMED) sumsq[t] += parts[warp + p][2][t];
      }
  }
  if constexpr (NORMED) {
#pragma unroll
    for (int t = 0; t < M; ++t) {
      float scale = 1.0f / sqrtf(sumsq[t] / in + eps);
#pragma unroll
      for (int r = 0; r < ROWS; ++r) sum[r][t] *= scale;
    }
  }
  if (lane != 0) return;
#pragma unroll
  for (int t = 0; t < M; ++t) {
    if (t < m) {
      // rows[0]: the output row, or for RoPE the first row of the rotation pair.
      skinny_store<T, TOut, EPI>(y, t, out, rows[0], sum[0][t], sum[ROWS - 1][t], bias, rk, head,
                                 d, half, keys);
    }
  }
}

// The widest load every row start allows: rows of x and w lie `in` elements apart, so an `in`
// that is not a multiple of the 16-byte vector narrows the loads (no tail is left over). M is the
// register tile of activation rows: batch-1 decode gets M = 1 entry points (_m1), since a tile of
// 8 rows would cost it occupancy. A NORMED product's fp32 x is 16-byte aligned (the host checks),
// which every vector width allows.
template <typename T, typename TOut, SkinnyEpilogue EPI, int M, bool NORMED = false, typename TX>
__device__ void skinny_vectors(TOut* y, const TX* x, const T* w, const T* bias, int m, int in, int out,
                               int ksplit, const RopeKv<T>& rk, float eps = 0.f,
                               unsigned long long* keys = nullptr) {
  uintptr_t starts = (NORMED ? 0 : (uintptr_t)x) | (uintptr_t)w | ((uintptr_t)in * sizeof(T));
  if (starts % 16 == 0) {
    skinny_rows<T, 16 / sizeof(T), TOut, EPI, M, NORMED>(y, x, w, bias, m, in, out, ksplit, rk, eps, keys);
  } else if (starts % 8 == 0) {
    skinny_rows<T, 8 / sizeof(T), TOut, EPI, M, NORMED>(y, x, w, bias, m, in, out, ksplit, rk, eps, keys);
  } else if (starts % 4 == 0) {
    skinny_rows<T, 4 / sizeof(T), TOut, EPI, M, NORMED>(y, x, w, bias, m, in, out, ksplit, rk, eps, keys);
  } else {
    skinny_rows<T, 1, TOut, EPI, M, NORMED>(y, x, w, bias, m, in, out, ksplit, rk, eps, keys);
  }
}


// ---- skinny GEMM on tensor cores --------------------------------------------------------------

// Steps of 2 to 8 rows (speculative verification, a draft's first round) with fp16 weights: the
// FMA kernel above rereads every activation row per weight vector and runs out of issue slots
// there, so these rows go through mma.sync instead, activations as the n = 8 side. A block owns a
// tile of 16 weight rows (for kSiluGate and kRopeKv: 8 rows and their partners, which land in the
// same lane) and its warps split the row length. The sum over k does not care how k is ordered,
// so each lane loads 8 contiguous halves of its rows and of its activation row, and both operands
// of the two m16n8k16 products take them in the same permuted order: the 16-byte loads need no
// shuffling. Warps meet in shared memory in warp order, so the bits do not depend on timing.
constexpr int kMmaMaxWarps = 8;
constexpr int kMmaUnroll = 4;  // 32-element rounds in flight per lane

__device__ __forceinline__ void mma_f16_16816(float (&acc)[4], unsigned a0, unsigned a1,
                                              unsigned a2, unsigned a3, unsigned b0, unsigned b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(acc[0]), "+f"(acc[1]), "+f"(acc[2]), "+f"(acc[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

// Eight activations of row `t` of x for vector v, as four half2 words: fp16 x as it is; the fp32
// residual stream of a NORMED product rounded to fp16 unnormed (the norm scales the sums instead,
// and a residual stream stays far inside fp16's range), its squares summed into ss in fp32 first.
template <bool NORMED, typename TX>
__device__ __forceinline__ uint4 mma_activations(const TX* x, int in, int t, int v, float& ss) {
  if constexpr (NORMED) {
    const float4* row = reinterpret_cast<const float4*>(x + (long)t * in);
    float4 lo = __ldg(row + 2 * v), hi = __ldg(row + 2 * v + 1);
    ss = fmaf(lo.x, lo.x, fmaf(lo.y, lo.y, fmaf(lo.z, lo.z, fmaf(lo.w, lo.w, ss))));
    ss = fmaf(hi.x, hi.x, fmaf(hi.y, hi.y, fmaf(hi.z, hi.z, fmaf(hi.w, hi.w, ss))));
    __half2 h[4] = {__floats2half2_rn(lo.x, lo.y), __floats2half2_rn(lo.z, lo.w),
                    __floats2half2_rn(hi.x, hi.y), __floats2half2_rn(hi.z, hi.w)};
    uint4 out;
    memcpy(&out, h, sizeof out);
    return out;
  } else {
    return __ldg(reinterpret_cast<const uint4*>(x + (long)t * in) + v);
  }
}

// y[t][row] = x[t] . w[row] for t < m <= 8, with the epilogues of skinny_rows. NORMED, as there:
// x is the fp32 residual stream and the sums are scaled by each row's RMSNorm, whose squares the
// lanes sum over the very elements they load (in fp32, before the rounding to fp16). The host
// checks that in is a multiple of 8 and that x and w are 16-byte aligned.
template <typename TOut, SkinnyEpilogue EPI, bool NORMED = false, typename TX = __half>
__device__ void skinny_mma(TOut* y, const TX* x, const __half* w, const __half* bias, int m,
                           int in, int out, const RopeKv<__half>& rk, unsigned long long* keys,
                           float eps = 0.f) {
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  int group = lane >> 2, quad = lane & 3;  // fragment row (and activation row), k quarter
  // The weight rows of fragment rows `group` and `group + 8`.
  long row_a, row_b;
  bool active_a, active_b;
  int half = 0, head = 0, d = 0;
  if constexpr (EPI == kSiluGate) {
    int j = blockIdx.x * 8 + group;
    active_a = active_b = j < out;
    row_a = j;
    row_b = (long)j + out;
  } else if constexpr (EPI == kRopeKv) {
    half = rk.head_dim / 2;
    int pair = blockIdx.x * 8 + group;
    active_a = active_b = pair < out / 2;
    head = pair / half;
    d = pair % half;
    row_a = (long)head * rk.head_dim + d;
    row_b = row_a + half;
  } else {
    row_a = (long)blockIdx.x * 16 + group;
    row_b = row_a + 8;
    active_a = row_a < out;
    active_b = row_b < out;
  }
  int vectors = in / 8;               // 8 halves, 16 bytes
  int rounds = (vectors + 3) / 4;     // a round: 4 lanes x 8 halves = 32 elements of k
  int per_warp = (rounds + warps - 1) / warps;
  int first = warp * per_warp, last = min(rounds, first + per_warp);
  const uint4* wa = reinterpret_cast<const uint4*>(w + (active_a ? row_a : 0) * in);
  const uint4* wb = reinterpret_cast<const uint4*>(w + (active_b ? row_b : 0) * in);
  int x_row = group < m ? group : 0;
  const uint4 zero = make_uint4(0, 0, 0, 0);
  uint4 ra[kMmaUnroll], rb[kMmaUnroll];
  auto load = [&](int base) {
#pragma unroll
    for (int u = 0; u < kMmaUnroll; ++u) {
      int v = (base + u) * 4 + quad;
      bool in_range = base + u < last && v < vectors;
      ra[u] = active_a && in_range ? __ldcs(wa + v) : zero;
      rb[u] = active_b && in_range ? __ldcs(wb + v) : zero;
    }
  };
  load(first);
  grid_dependency_sync();
  float acc[4] = {0.f, 0.f, 0.f, 0.f};
  float ss = 0.f;  // NORMED: squares of activation row `group` over this lane's elements
  for (int base = first; base < last; base += kMmaUnroll) {
    if (base != first) load(base);
#pragma unroll
    for (int u = 0; u < kMmaUnroll; ++u) {
      int v = (base + u) * 4 + quad;
      uint4 xv = group < m && base + u < last && v < vectors
                     ? mma_activations<NORMED>(x, in, x_row, v, ss)
                     : zero;
      mma_f16_16816(acc, ra[u].x, rb[u].x, ra[u].y, rb[u].y, xv.x, xv.y);
      mma_f16_16816(acc, ra[u].z, rb[u].z, ra[u].w, rb[u].w, xv.z, xv.w);
    }
  }
  __shared__ float parts[kMmaMaxWarps][4][32];
  __shared__ float squares[kMmaMaxWarps][8];  // NORMED: [warp][activation row]
  if constexpr (NORMED) {
    ss += __shfl_xor_sync(0xffffffffu, ss, 1);
    ss += __shfl_xor_sync(0xffffffffu, ss, 2);
    if (quad == 0) squares[warp][group] = ss;
  }
  if (warps > 1 || NORMED) {
#pragma unroll
    for (int i = 0; i < 4; ++i) parts[warp][i][lane] = acc[i];
    __syncthreads();
    if (warp != 0) return;
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      float sum = parts[0][i][lane];
      for (int p = 1; p < warps; ++p) sum += parts[p][i][lane];
      acc[i] = sum;
    }
  }
  if constexpr (NORMED) {
#pragma unroll
    for (int j = 0; j < 2; ++j) {
      float total = 0.f;
      for (int p = 0; p < warps; ++p) total += squares[p][2 * quad + j];
      float scale = 1.0f / sqrtf(total / in + eps);
      acc[j] *= scale;
      acc[2 + j] *= scale;
    }
  }
  // acc[j]: weight row_a, activation row 2 quad + j; acc[2 + j]: row_b, the same activation row.
  // The SiLU gate and RoPE pair row_a with row_b; the other epilogues store both rows.
  constexpr bool paired = EPI == kSiluGate || EPI == kRopeKv;
#pragma unroll
  for (int j = 0; j < 2; ++j) {
    int t = 2 * quad + j;
    if (t >= m) continue;
    if (active_a) {
      skinny_store<__half, TOut, EPI>(y, t, out, row_a, acc[j], acc[2 + j], bias, rk, head, d,
                                      half, keys);
    }
    if (!paired && active_b) {
      skinny_store<__half, TOut, EPI>(y, t, out, row_b, acc[2 + j], 0.f, bias, rk, head, d, half,
                                      keys);
    }
  }
}

}  // namespace
