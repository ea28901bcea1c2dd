// The decay gate's backward on the GPU: df = dg · dg/dx, dA_log[h] = Σ dg · g over head h's channels and all rows,
// ddt_bias = Σ_rows df, in log space as src/cpu/decay_gate.cpp forms them (g = −exp(A + log softplus x),
// dg/dx = −exp(A + log sigmoid x); a zero factor gives zero, never 0 · inf).
#include "cuda/decay_gate.h"

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "cuda/common.cuh"
#include "cuda/stream.h"
#include "cuda/elem.h"
#include "cuda/gdn2/load.cuh"

namespace gdn2::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int64_t kParts = 256;  // row parts: a fixed count, so the sums do not depend on the GPU
constexpr int kVec = 4, kUnroll = 4;

__device__ __forceinline__ float log_softplus(float x) {
  if (x > 20.f) return logf(x);
  if (x < -20.f) return x - 0.5f * expf(x);
  return logf(log1pf(expf(x)));
}

__device__ __forceinline__ float log_sigmoid(float x) { return fminf(x, 0.f) - log1pf(expf(-fabsf(x))); }

__device__ __forceinline__ float mul_zero_safe(float a, float b) { return a == 0.f || b == 0.f ? 0.f : a * b; }

// Columns j .. j + VEC − 1 of part `part`: df for its rows, and the part's sums of dg · g (pa) and df (pb) per column.
// VEC adjacent columns a thread (one vector access per row where rows are VEC-aligned), kUnroll rows' loads issued
// before any is used.
template <int VEC>
__global__ void __launch_bounds__(kThreads)
    gate_bwd_kernel(const void* __restrict__ dg, ElemType dg_type, const void* __restrict__ f, ElemType f_type,
                    const float* __restrict__ A, const float* __restrict__ bias, int64_t rows, int HK, int K,
                    int64_t rows_per, void* __restrict__ df, ElemType df_type, float* __restrict__ pa,
                    float* __restrict__ pb) {
  const int j = (blockIdx.x * kThreads + threadIdx.x) * VEC;
  const int64_t part = blockIdx.y;
  if (j >= HK) return;
  const int64_t r0 = part * rows_per, r1 = std::min(rows, r0 + rows_per);
  float a[VEC], bj[VEC], ea[VEC], sa[VEC] = {}, sb[VEC] = {};
  bool finite[VEC];
#pragma unroll
  for (int e = 0; e < VEC; ++e) {
    a[e] = A[(j + e) / K];
    bj[e] = bias != nullptr ? bias[j + e] : 0.f;
    // exp(A_log) once: while it is finite, −exp(A_log)·sigmoid(x) and −exp(A_log)·softplus(x) cannot overflow, and
    // both come from one exp(−|x|) (softplus = max(x, 0) + log1p(e^−|x|)); past that, the log-space forms.
    ea[e] = expf(a[e]);
    finite[e] = ea[e] <= 3.0e38f;
  }
  for (int64_t i0 = r0; i0 < r1; i0 += kUnroll) {
    float xs[kUnroll][VEC], ds[kUnroll][VEC];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u)
      if (i0 + u < r1) {
        load_elems<VEC>(f, f_type, (i0 + u) * HK + j, xs[u]);
        load_elems<VEC>(dg, dg_type, (i0 + u) * HK + j, ds[u]);
      }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      if (i0 + u >= r1) break;
      float dx[VEC];
#pragma unroll
      for (int e = 0; e < VEC; ++e) {
        const float x = xs[u][e] + bj[e], d = ds[u][e];
        float dg_g;
        if (finite[e]) {
          const float t = __expf(-fabsf(x)), inv = __fdividef(1.f, 1.f + t);
          dx[e] = mul_zero_safe(d, -ea[e] * (x >= 0.f ? inv : t * inv));
          dg_g = mul_zero_safe(d, -ea[e] * (fmaxf(x, 0.f) + log1pf(t)));
        } else {
          dx[e] = mul_zero_safe(d, -expf(a[e] + log_sigmoid(x)));
          dg_g = mul_zero_safe(d, -expf(a[e] + log_softplus(x)));
        }
        sa[e] += dg_g;
        sb[e] += dx[e];
      }
      store_elems<VEC>(df, df_type, (i0 + u) * HK + j, dx);
    }
  }
#pragma unroll
  for (int e = 0; e < VEC; ++e) {
    pa[part * HK + j + e] = sa[e];
    pb[part * HK + j + e] = sb[e];
  }
}

// In a fixed order: blocks below H form dA_log[h] = Σ_parts Σ_channels pa (the block's threads strided over the
// head's parts x channels, then a fixed tree); the blocks after them ddt_bias[j] = Σ_parts pb, a thread per column.
__global__ void gate_reduce_kernel(const float* __restrict__ pa, const float* __restrict__ pb, int64_t parts, int H,
                                   int HK, int K, float* __restrict__ dA, float* __restrict__ dbias) {
  if (static_cast<int>(blockIdx.x) < H) {
    __shared__ float s[kThreads];
    const int h = blockIdx.x;
    float acc = 0.f;
    for (int64_t i = threadIdx.x; i < parts * K; i += kThreads) acc += pa[(i / K) * HK + h * K + i % K];
    s[threadIdx.x] = acc;
    __syncthreads();
    for (int w = kThreads / 2; w > 0; w /= 2) {
      if (static_cast<int>(threadIdx.x) < w) s[threadIdx.x] += s[threadIdx.x + w];
      __syncthreads();
    }
    if (threadIdx.x == 0) dA[h] = s[0];
    return;
  }
  const int j = (blockIdx.x - H) * kThreads + threadIdx.x;
  if (dbias == nullptr || j >= HK) return;
  float s = 0.f;
  for (int64_t p = 0; p < parts; ++p) s += pb[p * HK + j];
  dbias[j] = s;
}

}  // namespace

DecayGateGrads decay_gate_backward(const Tensor& dg, const Tensor& f, const Tensor& A_log, const Tensor& dt_bias,
                                   int64_t head_dim, DType df_dtype) {
  const int64_t rows = f.size(0), HK = f.size(1), H = A_log.size(0);
  GDN2_CHECK(HK < (int64_t{1} << 31), UnsupportedError, "decay_gate_backward on CUDA: ", HK, " channels per row");
  constexpr const char* op = "decay_gate_backward on CUDA";
  const ElemType dg_type = elem_type(dg, op, "dg"), f_type = elem_type(f, op, "f");
  const Tensor A = as_f32(A_log), bias = dt_bias.defined() ? as_f32(dt_bias) : Tensor();
  DecayGateGrads out;
  out.df = Tensor::empty({rows, HK}, df_dtype, Device::cuda);
  out.dA_log = Tensor::empty({H}, DType::f32, Device::cuda);
  if (bias.defined()) out.ddt_bias = Tensor::empty({HK}, DType::f32, Device::cuda);
  const int64_t parts = std::max<int64_t>(1, std::min(kParts, rows));
  const int64_t rows_per = (rows + parts - 1) / parts;
  Tensor partial = Tensor::empty({2 * parts * HK}, DType::f32, Device::cuda);
  float* pa = static_cast<float*>(partial.raw_mut());
  float* pb = pa + parts * HK;
  const auto* bias_p = bias.defined() ? static_cast<const float*>(bias.raw()) : nullptr;
  // kVec columns a thread where every row of f, dg and df starts kVec-element aligned.
  auto aligned = [&](const Tensor& t) {
    return reinterpret_cast<uintptr_t>(t.raw()) % (kVec * dtype_size(t.dtype())) == 0;
  };
  const bool vec = HK % kVec == 0 && aligned(f) && aligned(dg) && aligned(out.df);
  auto launch = [&](auto v) {
    constexpr int V = decltype(v)::value;
    const dim3 grid(static_cast<unsigned>((HK / V + kThreads - 1) / kThreads), static_cast<unsigned>(parts));
    gate_bwd_kernel<V><<<grid, kThreads, 0, stream()>>>(dg.raw(), dg_type, f.raw(), f_type,
                                                        static_cast<const float*>(A.raw()), bias_p, rows,
                                                        static_cast<int>(HK), static_cast<int>(head_dim), rows_per,
                                                        out.df.raw_mut(), elem_type(out.df, op, "df"), pa, pb);
  };
  if (vec)
    launch(std::integral_constant<int, kVec>{});
  else
    launch(std::integral_constant<int, 1>{});
  GDN2_CUDA_CHECK(cudaGetLastError());
  const int64_t blocks = H + (bias.defined() ? (HK + kThreads - 1) / kThreads : 0);
  gate_reduce_kernel<<<static_cast<unsigned>(blocks), kThreads, 0, stream()>>>(
      pa, pb, parts, static_cast<int>(H), static_cast<int>(HK), static_cast<int>(head_dim),
      static_cast<float*>(out.dA_log.raw_mut()),
      bias.defined() ? static_cast<float*>(out.ddt_bias.raw_mut()) : nullptr);
  GDN2_CUDA_CHECK(cudaGetLastError());
  return out;
}

}  // namespace gdn2::cuda
