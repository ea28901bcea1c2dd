// Device-side element loads and stores for the GDN-2 kernels (fp32 / fp16 / bf16 by a run-time tag).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "cuda/fast_math.cuh"
#include "cuda/gdn2/params.h"

namespace gdn2::cuda {

// An element's bits as stored (fp32, or fp16 / bf16 in the low half), and its value. Kernels that load several inputs
// before using any take the bits first, so that the loads are in flight together, and convert afterwards.
__device__ __forceinline__ uint32_t load_bits(const void* p, ElemType t, int64_t i) {
  return t == ElemType::f32 ? static_cast<const uint32_t*>(p)[i] : static_cast<const uint16_t*>(p)[i];
}

__device__ __forceinline__ float bits_value(uint32_t b, ElemType t) {
  switch (t) {
    case ElemType::bf16: return __uint_as_float(b << 16);
    case ElemType::f16: return __half2float(__ushort_as_half(static_cast<unsigned short>(b)));
    default: return __uint_as_float(b);
  }
}

__device__ __forceinline__ float load_elem(const void* p, ElemType t, int64_t i) { return bits_value(load_bits(p, t, i), t); }

__device__ __forceinline__ void store_elem(void* p, ElemType t, int64_t i, float x) {
  switch (t) {
    case ElemType::bf16: static_cast<__nv_bfloat16*>(p)[i] = __float2bfloat16_rn(x); break;
    case ElemType::f16: static_cast<__half*>(p)[i] = __float2half_rn(x); break;
    default: static_cast<float*>(p)[i] = x;
  }
}

// N adjacent elements from element i in one access of N elements (p + i aligned to N elements).
template <typename T, int N>
struct alignas(sizeof(T) * N) ElemPack {
  T x[N];
};

template <int N>
__device__ __forceinline__ void load_elems(const void* p, ElemType t, int64_t i, float (&out)[N]) {
  if constexpr (N == 1) {
    out[0] = load_elem(p, t, i);
  } else if (t == ElemType::bf16) {
    const auto v = *reinterpret_cast<const ElemPack<__nv_bfloat16, N>*>(static_cast<const __nv_bfloat16*>(p) + i);
#pragma unroll
    for (int e = 0; e < N; ++e) out[e] = __bfloat162float(v.x[e]);
  } else if (t == ElemType::f16) {
    const auto v = *reinterpret_cast<const ElemPack<__half, N>*>(static_cast<const __half*>(p) + i);
#pragma unroll
    for (int e = 0; e < N; ++e) out[e] = __half2float(v.x[e]);
  } else {
    const auto v = *reinterpret_cast<const ElemPack<float, N>*>(static_cast<const float*>(p) + i);
#pragma unroll
    for (int e = 0; e < N; ++e) out[e] = v.x[e];
  }
}

template <int N>
__device__ __forceinline__ void store_elems(void* p, ElemType t, int64_t i, const float (&x)[N]) {
  if constexpr (N == 1) {
    store_elem(p, t, i, x[0]);
  } else if (t == ElemType::bf16) {
    ElemPack<__nv_bfloat16, N> v;
#pragma unroll
    for (int e = 0; e < N; ++e) v.x[e] = __float2bfloat16_rn(x[e]);
    *reinterpret_cast<ElemPack<__nv_bfloat16, N>*>(static_cast<__nv_bfloat16*>(p) + i) = v;
  } else if (t == ElemType::f16) {
    ElemPack<__half, N> v;
#pragma unroll
    for (int e = 0; e < N; ++e) v.x[e] = __float2half_rn(x[e]);
    *reinterpret_cast<ElemPack<__half, N>*>(static_cast<__half*>(p) + i) = v;
  } else {
    ElemPack<float, N> v;
#pragma unroll
    for (int e = 0; e < N; ++e) v.x[e] = x[e];
    *reinterpret_cast<ElemPack<float, N>*>(static_cast<float*>(p) + i) = v;
  }
}

// Element d of a gate at flat token `tok` for value head hv (channel: [tok, head, d]; head: broadcast; absent: fill),
// in two steps (gate_bits: the load, none for an absent gate; gate_value: the value) or one (load_gate).
__device__ __forceinline__ uint32_t gate_bits(const InputView& x, int64_t tok, int hv, int group, int hv_total, int d) {
  if (x.form == Gate::absent) return 0u;
  const int h = x.heads == hv_total ? hv : hv / group;
  const int64_t base = tok * x.stride_token + h * x.stride_head;
  return load_bits(x.ptr, x.type, x.form == Gate::channel ? base + d : base);
}

__device__ __forceinline__ float gate_value(const InputView& x, uint32_t bits, float absent) {
  if (x.form == Gate::absent) return absent;
  const float v = bits_value(bits, x.type);
  return x.sigmoid ? sigmoid(v) : v;  // as the sigmoid op
}

__device__ __forceinline__ float load_gate(const InputView& x, int64_t tok, int hv, int group, int hv_total, int d,
                                           float absent) {
  return gate_value(x, gate_bits(x, tok, hv, group, hv_total, d), absent);
}

// softplus with fla's threshold, and the in-kernel decay gate g = -exp(A_log) softplus(f + dt_bias) in log space.
__device__ __forceinline__ float decay_from_f(float f, float a_log, float dt) {
  const float x = f + dt;
  const float sp = x > 20.f ? x : log1pf(__expf(x));
  return sp > 0.f ? -__expf(a_log + __logf(sp)) : 0.f;
}

}  // namespace gdn2::cuda

namespace gdn2::cuda {

// The log decay g[tok, hv, d]: read as given, or formed from f by the in-kernel decay gate. In two steps like a gate:
// decay_bits loads (g or f, and A_log and dt_bias when the kernel forms g), decay_value forms the value.
struct DecayBits {
  uint32_t g = 0;
  float a_log = 0.f, dt = 0.f;
};

__device__ __forceinline__ DecayBits decay_bits(const Gdn2Params& p, int64_t tok, int hv, int d) {
  const int group = p.HV / p.H;
  DecayBits r;
  r.g = gate_bits(p.g, tok, hv, group, p.HV, d);
  if (p.a_log != nullptr) {
    const int h = p.g.heads == p.HV ? hv : hv / group;
    r.a_log = p.a_log[h];
    r.dt = p.dt_bias == nullptr ? 0.f : p.dt_bias[p.g.form == Gate::channel ? h * p.K + d : h];
  }
  return r;
}

__device__ __forceinline__ float decay_value(const Gdn2Params& p, const DecayBits& r) {
  const float raw = gate_value(p.g, r.g, 0.f);
  return p.a_log == nullptr ? raw : decay_from_f(raw, r.a_log, r.dt);
}

}  // namespace gdn2::cuda

namespace gdn2::cuda {

// Elements i .. i + E - 1 (E = 2 or 8) of x (element type t) into y, those from `valid` on zero: one vector load (two
// for eight fp32) when vec and all E are valid (then x + i is aligned to E elements, 16 bytes at most), else one by one.
template <int E>
__device__ __forceinline__ void load_elems(float (&y)[E], const void* x, ElemType t, int64_t i, int valid, bool vec) {
  static_assert(E == 2 || E == 8, "pieces of 2 or 8 elements");
  if (vec && valid >= E) {
    if (t == ElemType::f32) {
      const float* f = static_cast<const float*>(x) + i;
      if constexpr (E == 8) {
        const float4 a = *reinterpret_cast<const float4*>(f), b = *reinterpret_cast<const float4*>(f + 4);
        y[0] = a.x, y[1] = a.y, y[2] = a.z, y[3] = a.w, y[4] = b.x, y[5] = b.y, y[6] = b.z, y[7] = b.w;
      } else {
        const float2 v = *reinterpret_cast<const float2*>(f);
        y[0] = v.x, y[1] = v.y;
      }
      return;
    }
    uint32_t w[E / 2];  // E 16-bit values, two per word
    const auto* h = static_cast<const uint16_t*>(x) + i;
    if constexpr (E == 8) {
      const uint4 u = *reinterpret_cast<const uint4*>(h);
      w[0] = u.x, w[1] = u.y, w[2] = u.z, w[3] = u.w;
    } else {
      w[0] = *reinterpret_cast<const uint32_t*>(h);
    }
#pragma unroll
    for (int e = 0; e < E / 2; ++e) {
      const float2 f = t == ElemType::bf16 ? __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&w[e]))
                                           : __half22float2(*reinterpret_cast<const __half2*>(&w[e]));
      y[2 * e] = f.x, y[2 * e + 1] = f.y;
    }
    return;
  }
#pragma unroll
  for (int e = 0; e < E; ++e) y[e] = e < valid ? load_elem(x, t, i + e) : 0.f;
}

// Channels d0 .. d0 + E - 1 of one token of an input for the input head `head`: 0 outside the row or past dim, `absent`
// for an absent gate, a per-head gate broadcast. vec: vector loads are allowed (params.h, Gdn2Params::vec8; d0 a
// multiple of E).
template <int E>
__device__ __forceinline__ void load_input(float (&x)[E], const InputView& v, int64_t tok, int head, int d0, int dim,
                                           bool row_ok, bool vec, float absent) {
  if (v.form == Gate::absent || !row_ok || d0 >= dim) {
#pragma unroll
    for (int e = 0; e < E; ++e) x[e] = v.form == Gate::absent && row_ok && d0 + e < dim ? absent : 0.f;
    return;
  }
  const int64_t base = tok * v.stride_token + head * v.stride_head;
  if (v.form == Gate::head) {
    const float s = load_elem(v.ptr, v.type, base);
#pragma unroll
    for (int e = 0; e < E; ++e) x[e] = d0 + e < dim ? s : 0.f;
    return;
  }
  load_elems(x, v.ptr, v.type, base + d0, dim - d0, vec);
}

// This thread's pieces u < N of eight columns of a [rows][COLS] tile of x ([tokens, HV, V], element type t): piece
// idx = threadIdx.x + u·THREADS is row idx / (COLS / 8), token tok0 + row, columns col0 + 8 (idx % (COLS / 8)) .. + 7
// of value head hv (col0 a multiple of 8); zeros from row L on and past V. 16-byte loads where V is a multiple of 8
// and x 16-byte aligned. Every load is issued before any is used (a load cannot move above an earlier shared-memory
// store).
template <int N, int THREADS, int COLS = 64>
__device__ __forceinline__ void load_value_tile(float (&o)[N][8], const void* x, ElemType t, int64_t tok0, int L,
                                                int hv, int HV, int V, int col0) {
  const bool vec = V % 8 == 0 && reinterpret_cast<uintptr_t>(x) % 16 == 0;
#pragma unroll
  for (int u = 0; u < N; ++u) {
    const int idx = threadIdx.x + u * THREADS, r = idx / (COLS / 8), col = col0 + 8 * (idx % (COLS / 8));
    load_elems(o[u], x, t, ((tok0 + r) * HV + hv) * static_cast<int64_t>(V) + col, r < L ? V - col : 0, vec);
  }
}

// Row r and the first of the eight columns of piece u of load_value_tile's tile.
template <int THREADS, int COLS = 64>
__device__ __forceinline__ int piece_row(int u) { return (threadIdx.x + u * THREADS) / (COLS / 8); }
template <int THREADS, int COLS = 64>
__device__ __forceinline__ int piece_col(int u) { return 8 * ((threadIdx.x + u * THREADS) % (COLS / 8)); }

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

