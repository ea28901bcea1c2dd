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

// This thread's elements idx = threadIdx.x + u·THREADS (u < N) of a [rows][COLS] tile of x ([tokens, HV, V], element
// type t): row idx / COLS is token tok0 + row, column col0 + idx % COLS of value head hv; zeros from row L on and
// past V.
// Every load is issued before any is used (a load cannot move above an earlier shared-memory store).
template <int N, int THREADS, int COLS = 64>
__device__ __forceinline__ void load_value_tile(float (&o)[N], const void* x, ElemType t, int64_t tok0, int L, int hv,
                                                int HV, int V, int col0) {
#pragma unroll
  for (int u = 0; u < N; ++u) {
    const int idx = threadIdx.x + u * THREADS, r = idx / COLS, col = col0 + idx % COLS;
    o[u] = r < L && col < V ? load_elem(x, t, ((tok0 + r) * HV + hv) * static_cast<int64_t>(V) + col) : 0.f;
  }
}

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

// The head of input v that value head hv reads (inputs with H heads are shared by a group of value heads).
__device__ __forceinline__ int input_head(const InputView& v, int hv, int HV, int group) {
  return v.heads == HV ? hv : hv / group;
}

}  // namespace gdn2::cuda

