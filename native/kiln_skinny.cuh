// The skinny GEMM shared by the runner's kernels (llm_kernels.cu) and the kernels only the tests
// launch (test_kernels.cu): the FMA build for 1 to 8 activation rows (one-row entry points for
// batch-1 decode) and the tensor-core build for 2 to 8, with their epilogues. Templates and inline
// functions in an anonymous namespace, like kiln_common.cuh, on whose helpers it builds.
#pragma once

#include "kiln_common.cuh"

namespace {

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
// The greedy key of logit `sum` at column `col`: its order in the high word, the complemented index
// in the low (the first largest logit has the largest key); all ones for a NaN or an infinity.
__device__ __forceinline__ unsigned long long logit_key(float sum, long col) {
  return isfinite(sum) ? (unsigned long long)ordered(sum) << 32 | (0xffffffffu - (unsigned)col)
                       : ~0ull;
}

// Raises keys[t] to `key` where it is larger, reading first so that few lanes reach the atomic.
__device__ __forceinline__ void raise_key(unsigned long long* keys, int t, unsigned long long key) {
  if (key > *(volatile unsigned long long*)(keys + t)) atomicMax(keys + t, key);
}

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
    raise_key(keys, t, logit_key(sum, col));
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

// ---- LM head with int8 weights ------------------------------------------------------------------

// A draft model's LM head as int8 codes with one fp32 scale per vocabulary row (max |w| / 127): it
// is most of a small draft's weights, and half the bytes of fp16 make its steps that much shorter.
// logits[t][row] = scale[row] * (x[t] . codes[row]) for t < m <= M, x fp16, with the greedy keys
// of kLogitsArgmax. The layout is skinny_rows': a warp per row (ksplit warps for long rows), each
// lane 16 codes per 16-byte load, kSkinnyUnroll loads in flight, parts meeting in shared memory in
// part order. The host checks that in is a multiple of 16 and that x and the codes are 16-byte
// aligned.
template <int M>
__device__ void skinny_logits_i8(float* y, const __half* x, const int8_t* w, const float* scales,
                                 int m, int in, int out, int ksplit, unsigned long long* keys) {
  constexpr int VEC = 16;
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  int kshift = ksplit == 4 ? 2 : ksplit == 2 ? 1 : 0;
  int row = blockIdx.x * ((blockDim.x >> 5) >> kshift) + (warp >> kshift);
  int part = warp & (ksplit - 1);
  bool active = row < out;
  int vectors = in / VEC;
  int chunk = (((vectors + ksplit - 1) >> kshift) + 31) & ~31;
  int begin = part * chunk;
  int end = min(vectors, begin + chunk);
  const uint4* codes = reinterpret_cast<const uint4*>(w + (long)(active ? row : 0) * in);
  uint4 raw[kSkinnyUnroll];
  auto load = [&](int base) {
#pragma unroll
    for (int u = 0; u < kSkinnyUnroll; ++u) {
      int v = base + u * 32;
      raw[u] = active && v < end ? __ldcs(codes + v) : make_uint4(0, 0, 0, 0);
    }
  };
  load(begin + lane);
  grid_dependency_sync();
  if (!active && ksplit == 1) return;
  float acc[M];
#pragma unroll
  for (int t = 0; t < M; ++t) acc[t] = 0.f;
  for (int base = begin + lane; active && base < end; base += 32 * kSkinnyUnroll) {
    if (base != begin + lane) load(base);
#pragma unroll
    for (int u = 0; u < kSkinnyUnroll; ++u) {
      int v = base + u * 32;
      if (v < end) {
        int8_t q[VEC];
        memcpy(q, &raw[u], sizeof q);
#pragma unroll
        for (int t = 0; t < M; ++t) {
          if (t < m) {
            const uint4* xv = reinterpret_cast<const uint4*>(x + (long)t * in) + 2 * v;
            float xf[VEC];
            unpack<__half, 8>(__ldg(xv), xf);
            unpack<__half, 8>(__ldg(xv + 1), xf + 8);
#pragma unroll
            for (int e = 0; e < VEC; ++e) acc[t] = fmaf((float)q[e], xf[e], acc[t]);
          }
        }
      }
    }
  }
  float sum[M];
#pragma unroll
  for (int t = 0; t < M; ++t) sum[t] = t < m ? warp_sum(acc[t]) : 0.f;
  if (ksplit > 1) {
    __shared__ float parts[kSkinnyWarps][kSkinnyMaxRows];
    if (lane == 0) {
#pragma unroll
      for (int t = 0; t < M; ++t) parts[warp][t] = sum[t];
    }
    __syncthreads();
    if (part != 0 || !active) return;
    for (int p = 1; p < ksplit; ++p)
#pragma unroll
      for (int t = 0; t < M; ++t) sum[t] += parts[warp + p][t];
  }
  if (lane != 0) return;
  float scale = scales[row];
#pragma unroll
  for (int t = 0; t < M; ++t) {
    if (t < m) {
      skinny_store<__half, float, kLogitsArgmax>(y, t, out, row, sum[t] * scale, 0.f, nullptr, {},
                                                 0, 0, 0, keys);
    }
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
constexpr int kMmaUnroll = 4;  // 32-element rounds per register set; two sets are in flight

// The entry points' bounds: two blocks of the most warps per multiprocessor, which caps a thread
// at 128 registers (the two register sets of weights take 64).
#define KILN_SKINNY_MMA_BOUNDS __launch_bounds__(kMmaMaxWarps * 32, 2)

__device__ __forceinline__ void mma_f16_16816(float (&acc)[4], unsigned a0, unsigned a1,
                                              unsigned a2, unsigned a3, unsigned b0, unsigned b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(acc[0]), "+f"(acc[1]), "+f"(acc[2]), "+f"(acc[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

// A NORMED product's fp32 residual stream goes into fp16 unnormed (the norm scales the sums
// afterwards) and times this power of two, exact, which takes values up to 256 x 65504; elements
// under 2^-6 turn subnormal, their step staying 2^-16, that of the smallest normal ones.
constexpr float kMmaStreamScale = 1.0f / 256;

// Eight activations of row `t` of x for vector v, as four half2 words: fp16 x as it is; the fp32
// residual stream of a NORMED product times kMmaStreamScale, its squares summed into ss in fp32
// first.
template <bool NORMED, typename TX>
__device__ __forceinline__ uint4 mma_activations(const TX* x, int in, int t, int v, float& ss) {
  if constexpr (NORMED) {
    const float4* row = reinterpret_cast<const float4*>(x + (long)t * in);
    float4 lo = __ldg(row + 2 * v), hi = __ldg(row + 2 * v + 1);
    ss = fmaf(lo.x, lo.x, fmaf(lo.y, lo.y, fmaf(lo.z, lo.z, fmaf(lo.w, lo.w, ss))));
    ss = fmaf(hi.x, hi.x, fmaf(hi.y, hi.y, fmaf(hi.z, hi.z, fmaf(hi.w, hi.w, ss))));
    constexpr float k = kMmaStreamScale;
    __half2 h[4] = {__floats2half2_rn(lo.x * k, lo.y * k), __floats2half2_rn(lo.z * k, lo.w * k),
                    __floats2half2_rn(hi.x * k, hi.y * k), __floats2half2_rn(hi.z * k, hi.w * k)};
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
  // Two register sets of weights, so that the next rounds' loads are in flight while these rounds
  // multiply (the sets are named, not indexed, to stay in registers).
  uint4 wa0[kMmaUnroll], wb0[kMmaUnroll], wa1[kMmaUnroll], wb1[kMmaUnroll];
  auto load = [&](uint4 (&ra)[kMmaUnroll], uint4 (&rb)[kMmaUnroll], int base) {
#pragma unroll
    for (int u = 0; u < kMmaUnroll; ++u) {
      int v = (base + u) * 4 + quad;
      bool in_range = base + u < last && v < vectors;
      ra[u] = active_a && in_range ? __ldcs(wa + v) : zero;
      rb[u] = active_b && in_range ? __ldcs(wb + v) : zero;
    }
  };
  // Two accumulators, one per k16 half of a round, halve the chain of dependent mma.
  float acc[4] = {0.f, 0.f, 0.f, 0.f}, acc_hi[4] = {0.f, 0.f, 0.f, 0.f};
  float ss = 0.f;  // NORMED: squares of activation row `group` over this lane's elements
  // The fp16 activations all load before the first mma; the fp32 ones of a NORMED product, twice
  // the registers, one round at a time.
  auto multiply = [&](const uint4 (&ra)[kMmaUnroll], const uint4 (&rb)[kMmaUnroll], int base) {
    constexpr int AHEAD = NORMED ? 1 : kMmaUnroll;
#pragma unroll
    for (int u0 = 0; u0 < kMmaUnroll; u0 += AHEAD) {
      uint4 xv[AHEAD];
#pragma unroll
      for (int u = u0; u < u0 + AHEAD; ++u) {
        int v = (base + u) * 4 + quad;
        xv[u - u0] = group < m && base + u < last && v < vectors
                         ? mma_activations<NORMED>(x, in, x_row, v, ss)
                         : zero;
      }
#pragma unroll
      for (int u = u0; u < u0 + AHEAD; ++u) {
        const uint4& xu = xv[u - u0];
        mma_f16_16816(acc, ra[u].x, rb[u].x, ra[u].y, rb[u].y, xu.x, xu.y);
        mma_f16_16816(acc_hi, ra[u].z, rb[u].z, ra[u].w, rb[u].w, xu.z, xu.w);
      }
    }
  };
  load(wa0, wb0, first);
  grid_dependency_sync();
  for (int base = first; base < last; base += 2 * kMmaUnroll) {
    int next = base + kMmaUnroll;
    if (next < last) load(wa1, wb1, next);
    multiply(wa0, wb0, base);
    if (next + kMmaUnroll < last) load(wa0, wb0, next + kMmaUnroll);
    if (next < last) multiply(wa1, wb1, next);
  }
#pragma unroll
  for (int i = 0; i < 4; ++i) acc[i] += acc_hi[i];
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
      float scale = (1.0f / kMmaStreamScale) / sqrtf(total / in + eps);
      acc[j] *= scale;
      acc[2 + j] *= scale;
    }
  }
  // acc[j]: weight row_a, activation row 2 quad + j; acc[2 + j]: row_b, the same activation row.
  if constexpr (EPI == kLogitsArgmax) {
    // Every logit is stored, but each activation row's key is raised once per block: the best of
    // the tile's 16 rows, from the 8 lanes that share the row (max is order-free: same keys).
#pragma unroll
    for (int j = 0; j < 2; ++j) {
      int t = 2 * quad + j;
      unsigned long long best = 0;
      if (t < m && active_a) {
        y[(long)t * out + row_a] = acc[j];
        best = max(best, logit_key(acc[j], row_a));
      }
      if (t < m && active_b) {
        y[(long)t * out + row_b] = acc[2 + j];
        best = max(best, logit_key(acc[2 + j], row_b));
      }
#pragma unroll
      for (int o = 4; o < 32; o <<= 1) best = max(best, __shfl_xor_sync(0xffffffffu, best, o));
      if (group == 0 && t < m) raise_key(keys, t, best);
    }
    return;
  }
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
