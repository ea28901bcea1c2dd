// CUDA decode attention against per-sequence KV caches (flash-decoding): block (split, head group, sequence) walks its
// part of the sequence's visible keys, one key per warp at a time; each lane holds D/32 strided elements of the
// group's queries and of its running output, the scores reduced across the warp. The block's warps merge their
// (max, sum, output) in shared memory; with one split the block writes o, else its part's output and log-sum-exp,
// which a second kernel merges. The split count depends only on (N, L, heads), never on the lengths, so a decode step
// captured in a CUDA graph stays valid as the sequences grow. Also the per-sequence key/value write.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cmath>

#include "cuda/attention.h"
#include "cuda/common.cuh"
#include "cuda/gdn2/kernels.h"
#include "cuda/stream.h"

namespace gdn2::cuda {

namespace {

constexpr int kWarps = 4;
constexpr int kMaxGroup = 8;  // query heads per block (a larger GQA group takes several blocks)

__device__ __forceinline__ float to_f(float x) { return x; }
__device__ __forceinline__ float to_f(__nv_bfloat16 x) { return __bfloat162float(x); }
__device__ __forceinline__ float to_f(__half x) { return __half2float(x); }
template <class T>
__device__ __forceinline__ T from_f(float x);
template <>
__device__ __forceinline__ float from_f<float>(float x) { return x; }
template <>
__device__ __forceinline__ __nv_bfloat16 from_f<__nv_bfloat16>(float x) { return __float2bfloat16(x); }
template <>
__device__ __forceinline__ __half from_f<__half>(float x) { return __float2half(x); }

struct DecodeArgs {
  const void* q;  // [N, Hq, D]
  const void* k;  // [S, L, Hkv, D]
  const void* v;
  const int32_t* len;  // [N]
  void* o;             // [N, Hq, D]
  float* part_o;       // [N, Hq, splits, D] (splits > 1)
  float* part_lse;     // [N, Hq, splits]
  int64_t L, window;
  int Hq, Hkv, D, G, subgroups, splits, chunk;
  float scale;
};

// E elements per lane: D <= 32 E.
template <class T, int E>
__global__ void __launch_bounds__(kWarps * 32) decode_kernel(const DecodeArgs a) {
  const int split = blockIdx.x, n = blockIdx.z;
  const int hkv = blockIdx.y / a.subgroups;
  const int h0 = hkv * a.G + (blockIdx.y % a.subgroups) * kMaxGroup;
  const int gn = min(kMaxGroup, hkv * a.G + a.G - h0);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t len = min(max(static_cast<int64_t>(a.len[n]), int64_t{0}), a.L);
  const int64_t start = a.window > 0 ? max(int64_t{0}, len - a.window) : 0;
  const int64_t lo = max(start, static_cast<int64_t>(split) * a.chunk);
  const int64_t hi = min(len, static_cast<int64_t>(split + 1) * a.chunk);

  float qv[kMaxGroup][E], acc[kMaxGroup][E], m[kMaxGroup], l[kMaxGroup];
  const T* q = static_cast<const T*>(a.q) + (static_cast<int64_t>(n) * a.Hq + h0) * a.D;
#pragma unroll
  for (int g = 0; g < kMaxGroup; ++g) {
    m[g] = -INFINITY;
    l[g] = 0.f;
#pragma unroll
    for (int e = 0; e < E; ++e) {
      const int d = e * 32 + lane;
      qv[g][e] = g < gn && d < a.D ? to_f(q[g * a.D + d]) * a.scale : 0.f;
      acc[g][e] = 0.f;
    }
  }
  const int64_t tok = static_cast<int64_t>(a.Hkv) * a.D;
  const T* kb = static_cast<const T*>(a.k) + static_cast<int64_t>(n) * a.L * tok + hkv * a.D;
  const T* vb = static_cast<const T*>(a.v) + static_cast<int64_t>(n) * a.L * tok + hkv * a.D;
  for (int64_t j = lo + warp; j < hi; j += kWarps) {
    float kv[E], vv[E];
#pragma unroll
    for (int e = 0; e < E; ++e) {
      const int d = e * 32 + lane;
      kv[e] = d < a.D ? to_f(kb[j * tok + d]) : 0.f;
      vv[e] = d < a.D ? to_f(vb[j * tok + d]) : 0.f;
    }
#pragma unroll
    for (int g = 0; g < kMaxGroup; ++g) {
      if (g >= gn) break;
      float s = 0.f;
#pragma unroll
      for (int e = 0; e < E; ++e) s += qv[g][e] * kv[e];
#pragma unroll
      for (int off = 16; off > 0; off /= 2) s += __shfl_xor_sync(0xffffffffu, s, off);
      const float mn = fmaxf(m[g], s);
      const float c = expf(m[g] - mn), p = expf(s - mn);
      l[g] = l[g] * c + p;
#pragma unroll
      for (int e = 0; e < E; ++e) acc[g][e] = acc[g][e] * c + p * vv[e];
      m[g] = mn;
    }
  }

  // Merge the warps: each publishes (m, l, acc); every thread then forms some (g, d) outputs.
  __shared__ float sm[kWarps][kMaxGroup], sl[kWarps][kMaxGroup];
  extern __shared__ float sacc[];  // [kWarps][kMaxGroup][32 E]
  for (int g = 0; g < gn; ++g) {
    if (lane == 0) {
      sm[warp][g] = m[g];
      sl[warp][g] = l[g];
    }
#pragma unroll
    for (int e = 0; e < E; ++e) sacc[(warp * kMaxGroup + g) * 32 * E + e * 32 + lane] = acc[g][e];
  }
  __syncthreads();
  for (int i = threadIdx.x; i < gn * a.D; i += blockDim.x) {
    const int g = i / a.D, d = i % a.D;
    float M = -INFINITY;
    for (int w = 0; w < kWarps; ++w) M = fmaxf(M, sm[w][g]);
    float sum = 0.f, out = 0.f;
    if (M != -INFINITY) {
      for (int w = 0; w < kWarps; ++w) {
        const float f = expf(sm[w][g] - M);
        sum += sl[w][g] * f;
        out += sacc[(w * kMaxGroup + g) * 32 * E + d] * f;
      }
    }
    const int64_t row = static_cast<int64_t>(n) * a.Hq + h0 + g;
    if (a.splits == 1) {
      static_cast<T*>(a.o)[row * a.D + d] = from_f<T>(sum > 0.f ? out / sum : 0.f);
    } else {
      a.part_o[(row * a.splits + split) * a.D + d] = sum > 0.f ? out / sum : 0.f;
      if (d == 0) a.part_lse[row * a.splits + split] = sum > 0.f ? M + logf(sum) : -INFINITY;
    }
  }
}

// One block per (sequence, query head): o = Σ_s exp(lse_s − M) o_s / Σ_s exp(lse_s − M).
template <class T>
__global__ void combine_kernel(const DecodeArgs a) {
  const int64_t row = blockIdx.x;
  const float* lse = a.part_lse + row * a.splits;
  float M = -INFINITY;
  for (int s = 0; s < a.splits; ++s) M = fmaxf(M, lse[s]);
  for (int d = threadIdx.x; d < a.D; d += blockDim.x) {
    float sum = 0.f, out = 0.f;
    if (M != -INFINITY)
      for (int s = 0; s < a.splits; ++s) {
        const float f = expf(lse[s] - M);
        sum += f;
        out += f * a.part_o[(row * a.splits + s) * a.D + d];
      }
    static_cast<T*>(a.o)[row * a.D + d] = from_f<T>(sum > 0.f ? out / sum : 0.f);
  }
}

template <class T>
__global__ void kv_write_kernel(T* cache, const T* x, const int32_t* pos, int64_t N, int64_t L, int64_t row) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < N * row;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t n = i / row, p = pos[n];
    if (p >= 0 && p < L) cache[(n * L + p) * row + i % row] = x[i];
  }
}

template <class F>
void by_type(DType dt, F&& f) {
  switch (dt) {
    case DType::f32: f(float{}); break;
    case DType::bf16: f(__nv_bfloat16{}); break;
    case DType::f16: f(__half{}); break;
    default: GDN2_THROW(DTypeError, "attention_decode: F32, BF16 or F16 on the GPU, got ", dtype_name(dt));
  }
}

template <class T, int E>
void launch_decode(const DecodeArgs& a, int64_t N) {
  const dim3 grid(static_cast<unsigned>(a.splits), static_cast<unsigned>(a.Hkv * a.subgroups),
                  static_cast<unsigned>(N));
  const size_t smem = sizeof(float) * kWarps * kMaxGroup * 32 * E;
  launch_with_smem(decode_kernel<T, E>, grid, kWarps * 32, smem, stream(), a);
  if (a.splits > 1) {
    combine_kernel<T><<<static_cast<unsigned>(N * a.Hq), std::min(a.D, 256), 0, stream()>>>(a);
    GDN2_CUDA_CHECK(cudaGetLastError());
  }
}

}  // namespace

Tensor attention_decode(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache, const Tensor& lengths,
                        double scale, int64_t window) {
  const int64_t N = q.size(0), Hq = q.size(1), D = q.size(2), L = k_cache.size(1), Hkv = k_cache.size(2);
  Tensor o = Tensor::empty(q.shape(), q.dtype(), Device::cuda);
  if (N == 0 || Hq == 0) return o;
  DecodeArgs a{};
  a.q = q.raw();
  a.k = k_cache.raw();
  a.v = v_cache.raw();
  a.len = static_cast<const int32_t*>(lengths.raw());
  a.o = o.raw_mut();
  a.L = L;
  a.window = window;
  a.Hq = static_cast<int>(Hq);
  a.Hkv = static_cast<int>(Hkv);
  a.D = static_cast<int>(D);
  a.G = static_cast<int>(Hq / Hkv);
  a.subgroups = (a.G + kMaxGroup - 1) / kMaxGroup;
  a.scale = static_cast<float>(scale);
  // Splits: enough blocks to fill the device twice over, each part at least 64 keys (a window bounds the keys any
  // sequence reads, so it bounds the parts too).
  const int64_t keys = window > 0 ? std::min(window, L) : L;
  const int64_t blocks = N * Hkv * a.subgroups;
  const int64_t want = std::max<int64_t>(1, (2 * sm_count() + blocks - 1) / blocks);
  int64_t splits = std::clamp<int64_t>(want, 1, std::max<int64_t>(1, (keys + 63) / 64));
  if (window > 0) splits = 1;  // a window's keys sit anywhere in [0, L): one part walks them all
  a.splits = static_cast<int>(splits);
  a.chunk = static_cast<int>((L + splits - 1) / splits);
  Tensor part_o, part_lse;
  if (splits > 1) {
    part_o = Tensor::empty({N, Hq, splits, D}, DType::f32, Device::cuda);
    part_lse = Tensor::empty({N, Hq, splits}, DType::f32, Device::cuda);
    a.part_o = static_cast<float*>(part_o.raw_mut());
    a.part_lse = static_cast<float*>(part_lse.raw_mut());
  }
  by_type(q.dtype(), [&](auto t) {
    using T = decltype(t);
    if (D <= 64)
      launch_decode<T, 2>(a, N);
    else if (D <= 128)
      launch_decode<T, 4>(a, N);
    else
      launch_decode<T, 8>(a, N);
  });
  return o;
}

void kv_cache_write(Tensor& cache, const Tensor& x, const Tensor& positions) {
  const int64_t N = x.size(0), row = x.size(1) * x.size(2);
  if (N == 0 || row == 0) return;
  const auto blocks = static_cast<unsigned>(std::min<int64_t>((N * row + 255) / 256, 4096));
  by_type(x.dtype(), [&](auto t) {
    using T = decltype(t);
    kv_write_kernel<T><<<blocks, 256, 0, stream()>>>(static_cast<T*>(cache.raw_mut()), static_cast<const T*>(x.raw()),
                                                     static_cast<const int32_t*>(positions.raw()), N,
                                                     cache.size(1), row);
  });
  GDN2_CUDA_CHECK(cudaGetLastError());
}

}  // namespace gdn2::cuda
