// Device-side element loads and stores for the GDN-2 kernels (fp32 / fp16 / bf16 by a run-time tag).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "cuda/gdn2/params.h"

namespace gdn2::cuda {

__device__ __forceinline__ float load_elem(const void* p, ElemType t, int64_t i) {
  switch (t) {
    case ElemType::bf16: return __bfloat162float(static_cast<const __nv_bfloat16*>(p)[i]);
    case ElemType::f16: return __half2float(static_cast<const __half*>(p)[i]);
    default: return static_cast<const float*>(p)[i];
  }
}

__device__ __forceinline__ void store_elem(void* p, ElemType t, int64_t i, float x) {
  switch (t) {
    case ElemType::bf16: static_cast<__nv_bfloat16*>(p)[i] = __float2bfloat16_rn(x); break;
    case ElemType::f16: static_cast<__half*>(p)[i] = __float2half_rn(x); break;
    default: static_cast<float*>(p)[i] = x;
  }
}

// Element d of a gate at flat token `tok` for value head hv (channel: [tok, head, d]; head: broadcast; absent: fill).
__device__ __forceinline__ float load_gate(const InputView& x, int64_t tok, int hv, int group, int hv_total, int d,
                                           float absent) {
  if (x.form == Gate::absent) return absent;
  const int h = x.heads == hv_total ? hv : hv / group;
  const int64_t base = tok * x.stride_token + h * x.stride_head;
  return load_elem(x.ptr, x.type, x.form == Gate::channel ? base + d : base);
}

// softplus with fla's threshold, and the in-kernel decay gate g = -exp(A_log) softplus(f + dt_bias) in log space.
__device__ __forceinline__ float decay_from_f(float f, float a_log, float dt) {
  const float x = f + dt;
  const float sp = x > 20.f ? x : log1pf(__expf(x));
  return sp > 0.f ? -__expf(a_log + __logf(sp)) : 0.f;
}

}  // namespace gdn2::cuda

namespace gdn2::cuda {

// The log decay g[tok, hv, d]: read as given, or formed from f by the in-kernel decay gate.
__device__ __forceinline__ float load_decay(const Gdn2Params& p, int64_t tok, int hv, int d) {
  const int group = p.HV / p.H;
  const float raw = load_gate(p.g, tok, hv, group, p.HV, d, 0.f);
  if (p.a_log == nullptr) return raw;
  const int h = p.g.heads == p.HV ? hv : hv / group;
  const float dt = p.dt_bias == nullptr ? 0.f : p.dt_bias[p.g.form == Gate::channel ? h * p.K + d : h];
  return decay_from_f(raw, p.a_log[h], dt);
}

}  // namespace gdn2::cuda

namespace gdn2::cuda {

// Flat token range [begin, end) of sequence n.
__device__ __forceinline__ void sequence_range(const Gdn2Params& p, int n, int64_t& begin, int64_t& end) {
  if (p.seq_offsets != nullptr) {
    begin = p.seq_offsets[n];
    end = p.seq_offsets[n + 1];
  } else {
    begin = static_cast<int64_t>(n) * p.T;
    end = begin + p.T;
  }
}

}  // namespace gdn2::cuda

namespace gdn2::cuda {

__device__ __forceinline__ float to_float(float x) { return x; }
__device__ __forceinline__ float to_float(__nv_bfloat16 x) { return __bfloat162float(x); }
__device__ __forceinline__ float to_float(__half x) { return __half2float(x); }

// x[e] = element (row0 + e·row_step, col) of one head of an input, for e < N: rows are tokens from tok0, col indexes
// the channel (ignored for per-head gates); outside rows < rows_valid and col < cols_valid it is 0, and an absent
// gate reads `absent`. All N loads are issued before the first is used (one switch on the type, outside the loop).
template <int N, typename E>
__device__ __forceinline__ void gather_typed(float (&x)[N], const InputView& v, int64_t base, int row0, int row_step,
                                             int col, int rows_valid, int cols_valid) {
  const E* ptr = static_cast<const E*>(v.ptr);
  const bool channel = v.form == Gate::channel;
#pragma unroll
  for (int e = 0; e < N; ++e) {
    const int r = row0 + e * row_step;
    const bool ok = r < rows_valid && col < cols_valid;
    x[e] = ok ? to_float(ptr[base + r * v.stride_token + (channel ? col : 0)]) : 0.f;
  }
}

template <int N>
__device__ __forceinline__ void gather(float (&x)[N], const InputView& v, int64_t tok0, int head, int row0,
                                       int row_step, int col, int rows_valid, int cols_valid, float absent) {
  if (v.form == Gate::absent) {
#pragma unroll
    for (int e = 0; e < N; ++e) x[e] = (row0 + e * row_step < rows_valid && col < cols_valid) ? absent : 0.f;
    return;
  }
  const int64_t base = tok0 * v.stride_token + head * v.stride_head;
  switch (v.type) {
    case ElemType::bf16: gather_typed<N, __nv_bfloat16>(x, v, base, row0, row_step, col, rows_valid, cols_valid); break;
    case ElemType::f16: gather_typed<N, __half>(x, v, base, row0, row_step, col, rows_valid, cols_valid); break;
    default: gather_typed<N, float>(x, v, base, row0, row_step, col, rows_valid, cols_valid);
  }
}

// The head of input v that value head hv reads (inputs with H heads are shared by a group of value heads).
__device__ __forceinline__ int input_head(const InputView& v, int hv, int HV, int group) {
  return v.heads == HV ? hv : hv / group;
}

}  // namespace gdn2::cuda

