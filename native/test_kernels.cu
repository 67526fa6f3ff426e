// Kernels only the tests launch (java/cuda/src/test), built into a fatbin of their own that only
// the test classpath carries (io/kiln/native/test_kernels.fatbin): the unfused RoPE and K/V write
// that the fused kernels are checked against, the fp16 -> fp32 cast that reads device data back,
// seeded top-k/top-p sampling and the fp32-output skinny GEMM. Same conventions as llm_kernels.cu.
#include "kiln_common.cuh"
#include "kiln_skinny.cuh"

namespace {

// Rotates the two halves of every q and k head in place (the rotate_half layout). cos/sin are
// tables [position][headDim/2] computed on the host in double precision.
template <typename T>
__device__ void rope(T* qkv, const int* positions, const float* cos_table, const float* sin_table,
                     int n, int num_heads, int num_kv_heads, int head_dim, int row_stride) {
  grid_dependency_sync();
  int half = head_dim / 2;
  int heads = num_heads + num_kv_heads;
  long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= (long)n * heads * half) return;
  int d = (int)(i % half);
  int h = (int)((i / half) % heads);
  int t = (int)(i / ((long)half * heads));
  // k heads follow the q heads in a row, so one column formula covers both.
  T* v = qkv + (long)t * row_stride + (long)h * head_dim;
  long at = (long)positions[t] * half + d;
  float co = cos_table[at], si = sin_table[at];
  float ra, rb;
  rotate(to_float(v[d]), to_float(v[d + half]), co, si, ra, rb);
  v[d] = from_float<T>(ra);
  v[d + half] = from_float<T>(rb);
}

// Copies each token's k and v rows into the pool slot slot_mapping[t] (negative: skip).
template <typename T>
__device__ void kv_write(T* key_cache, T* value_cache, const T* qkv, const int* slot_mapping, int n,
                         int kv_dim, int row_stride, int k_offset, int v_offset) {
  grid_dependency_sync();
  long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= (long)n * kv_dim) return;
  int t = (int)(i / kv_dim), e = (int)(i % kv_dim);
  int slot = slot_mapping[t];
  if (slot < 0) return;
  const T* row = qkv + (long)t * row_stride;
  key_cache[(long)slot * kv_dim + e] = row[k_offset + e];
  value_cache[(long)slot * kv_dim + e] = row[v_offset + e];
}

// ---- sampling --------------------------------------------------------------------------------

// Philox4x32-10 (Salmon et al., SC'11): counter-based, so a (seed, step) pair always gives the
// same draw, whatever else shares the batch.
__device__ uint4 philox(uint2 key, uint4 ctr) {
  const uint32_t M0 = 0xD2511F53u, M1 = 0xCD9E8D57u, W0 = 0x9E3779B9u, W1 = 0xBB67AE85u;
#pragma unroll
  for (int r = 0; r < 10; ++r) {
    uint32_t hi0 = __umulhi(M0, ctr.x), lo0 = M0 * ctr.x;
    uint32_t hi1 = __umulhi(M1, ctr.z), lo1 = M1 * ctr.z;
    ctr = make_uint4(hi1 ^ ctr.y ^ key.x, lo1, hi0 ^ ctr.w ^ key.y, lo0);
    key.x += W0;
    key.y += W1;
  }
  return ctr;
}

// Largest key threshold t with mass(ordered(logit) >= t) >= target, where mass counts 1 per
// token (top-k) or exp((logit - max) / temperature) (top-p). 32 rounds of bisection over keys.
__device__ uint32_t key_threshold(const float* row, int vocab, bool by_count, float target, float max,
                                  float inv_temp, uint32_t floor_key, float* scratch) {
  uint32_t lo = floor_key, hi = 0xffffffffu;
  while (lo < hi) {
    uint32_t mid = lo + (uint32_t)(((uint64_t)hi - lo + 1) / 2);
    float mass = 0.f;
    for (int i = threadIdx.x; i < vocab; i += blockDim.x) {
      uint32_t k = ordered(row[i]);
      if (k >= mid) mass += by_count ? 1.f : expf((row[i] - max) * inv_temp);
    }
    mass = block_sum(mass, scratch);
    if (mass >= target) lo = mid; else hi = mid - 1;
  }
  return lo;
}

// One block per row. temperature <= 0 is greedy. Otherwise keep the top_k largest logits
// (0 = all), then the smallest set of largest probabilities whose mass reaches top_p, and draw
// from it with Philox(seed, offset) in token-id order. Ties at a threshold are all kept.
__device__ void sample_row(const float* logits, int vocab, const float* temperatures, const int* top_ks,
                           const float* top_ps, const unsigned long long* seeds,
                           const unsigned long long* offsets, int* out) {
  grid_dependency_sync();
  __shared__ float scratch[32];
  __shared__ float s_val[kSampleThreads];
  __shared__ int s_idx[kSampleThreads];
  int r = blockIdx.x;
  const float* row = logits + (long)r * vocab;
  int greedy = block_argmax(row, vocab, s_val, s_idx);
  float temp = temperatures[r];
  if (!(temp > 0.f)) {
    if (threadIdx.x == 0) out[r] = greedy;
    return;
  }
  float inv_temp = 1.0f / temp;
  float max = row[greedy];
  int k = top_ks[r];
  uint32_t key_floor = 0;
  if (k > 0 && k < vocab) key_floor = key_threshold(row, vocab, true, (float)k, max, inv_temp, 0, scratch);
  float mass = 0.f;
  for (int i = threadIdx.x; i < vocab; i += blockDim.x)
    if (ordered(row[i]) >= key_floor) mass += expf((row[i] - max) * inv_temp);
  mass = block_sum(mass, scratch);
  float p = top_ps[r];
  if (p < 1.f) {
    key_floor = key_threshold(row, vocab, false, p * mass, max, inv_temp, key_floor, scratch);
    mass = 0.f;
    for (int i = threadIdx.x; i < vocab; i += blockDim.x)
      if (ordered(row[i]) >= key_floor) mass += expf((row[i] - max) * inv_temp);
    mass = block_sum(mass, scratch);
  }
  unsigned long long seed = seeds[r], offset = offsets[r];
  uint4 bits = philox(make_uint2((uint32_t)seed, (uint32_t)(seed >> 32)),
                      make_uint4((uint32_t)offset, (uint32_t)(offset >> 32), 0u, 0u));
  float u = (bits.x >> 8) * (1.0f / 16777216.0f) * mass;

  // Contiguous ranges per thread so a prefix sum over threads walks token ids in order.
  int chunk = (vocab + blockDim.x - 1) / blockDim.x;
  int from = threadIdx.x * chunk, to = min(vocab, from + chunk);
  float local = 0.f;
  for (int i = from; i < to; ++i)
    if (ordered(row[i]) >= key_floor) local += expf((row[i] - max) * inv_temp);
  __syncthreads();
  s_val[threadIdx.x] = local;
  __syncthreads();
  for (int stride = 1; stride < blockDim.x; stride <<= 1) {
    float add = threadIdx.x >= stride ? s_val[threadIdx.x - stride] : 0.f;
    __syncthreads();
    s_val[threadIdx.x] += add;
    __syncthreads();
  }
  float before = s_val[threadIdx.x] - local;
  __shared__ int chosen;
  if (threadIdx.x == 0) chosen = greedy;  // rounding past the end falls back to the top token
  __syncthreads();
  if (local > 0.f && u >= before && u < before + local) {
    float c = before;
    int pick = -1;
    for (int i = from; i < to; ++i) {
      if (ordered(row[i]) >= key_floor) {
        pick = i;
        c += expf((row[i] - max) * inv_temp);
        if (u < c) break;
      }
    }
    chosen = pick;
  }
  __syncthreads();
  if (threadIdx.x == 0) out[r] = chosen;
}

}  // namespace

// ---- entry points ----------------------------------------------------------------------------
#define KILN_TEST_ELEMENTWISE(SUFFIX, T)                                                             \
  extern "C" __global__ void rope_##SUFFIX(T* qkv, const int* positions, const float* cos_table,     \
                                           const float* sin_table, int n, int num_heads,             \
                                           int num_kv_heads, int head_dim, int row_stride) {         \
    rope<T>(qkv, positions, cos_table, sin_table, n, num_heads, num_kv_heads, head_dim, row_stride); \
  }                                                                                                  \
  extern "C" __global__ void kv_write_##SUFFIX(T* key_cache, T* value_cache, const T* qkv,           \
                                               const int* slot_mapping, int n, int kv_dim,           \
                                               int row_stride, int k_offset, int v_offset) {         \
    kv_write<T>(key_cache, value_cache, qkv, slot_mapping, n, kv_dim, row_stride, k_offset,          \
                v_offset);                                                                           \
  }

#define KILN_TEST_SKINNY_GEMM(SUFFIX, T, TAG, M, MIN_BLOCKS)                                        \
  extern "C" __global__ void __launch_bounds__(kSkinnyWarps * 32, MIN_BLOCKS)                      \
      skinny_gemm_to_f32##TAG##_##SUFFIX(float* y, const T* x, const T* w, int m, int in, int out,  \
                                         int ksplit) {                                               \
    skinny_vectors<T, float, kPlain, M>(y, x, w, nullptr, m, in, out, ksplit, {});                  \
  }

KILN_TEST_ELEMENTWISE(f32, float)
KILN_TEST_ELEMENTWISE(f16, __half)
KILN_TEST_SKINNY_GEMM(f32, float, , kSkinnyMaxRows, 4)
KILN_TEST_SKINNY_GEMM(f16, __half, , kSkinnyMaxRows, 4)
KILN_TEST_SKINNY_GEMM(f32, float, _m1, 1, 8)
KILN_TEST_SKINNY_GEMM(f16, __half, _m1, 1, 8)

extern "C" __global__ void KILN_SKINNY_MMA_BOUNDS skinny_gemm_to_f32_mma_f16(
    float* y, const __half* x, const __half* w, int m, int in, int out, int ksplit) {
  skinny_mma<float, kPlain>(y, x, w, nullptr, m, in, out, {}, nullptr);
}

extern "C" __global__ void cast_f16_to_f32(float* out, const __half* in, long long count) {
  grid_dependency_sync();
  long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i < count) out[i] = __half2float(in[i]);
}

extern "C" __global__ void __launch_bounds__(kSampleThreads) sample_f32(
    const float* logits, int vocab, const float* temperatures, const int* top_ks, const float* top_ps,
    const unsigned long long* seeds, const unsigned long long* offsets, int* out) {
  sample_row(logits, vocab, temperatures, top_ks, top_ps, seeds, offsets, out);
}
