// Token-recurrent GDN-2 on the GPU: decode (one token per sequence, state updated in place) and short multi-token
// runs (speculative verify). One block per (sequence, value head, 32-, 64- or 128-column slice of V); its warps split
// the K rows; the state slice lives in registers, fp32 or bf16 in memory (a template parameter).
#include <cstdint>
#include <cstdlib>
#include <type_traits>

#include "cuda/common.cuh"
#include "cuda/gdn2/kernels.h"
#include "cuda/gdn2/load.cuh"

namespace gdn2::cuda {

namespace {

// Sum over the block's WARPS warps (for the L2 norms).
template <int WARPS>
__device__ __forceinline__ float block_sum(float x, float* scratch) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) scratch[warp] = x;
  __syncthreads();
  float s = 0.f;
#pragma unroll
  for (int w = 0; w < WARPS; ++w) s += scratch[w];
  __syncthreads();
  return s;
}

__device__ __forceinline__ float to_float(float x) { return x; }
__device__ __forceinline__ float to_float(__nv_bfloat16 x) { return __bfloat162float(x); }
template <typename S>
__device__ __forceinline__ S from_float(float x) {
  if constexpr (std::is_same_v<S, float>)
    return x;
  else
    return __float2bfloat16_rn(x);
}

// CPL adjacent state elements of one row, moved in one access of CPL * sizeof(S) bytes when all exist and the address
// is aligned, else element by element. `valid` counts the columns in range from the first.
template <typename S, int CPL>
struct alignas(CPL * sizeof(S)) Pack {
  S x[CPL];
};

template <typename S, int CPL>
__device__ __forceinline__ void load_state(const S* p, int64_t i, int valid, float* x) {
  if (valid >= CPL && reinterpret_cast<uintptr_t>(p + i) % sizeof(Pack<S, CPL>) == 0) {
    const Pack<S, CPL> v = *reinterpret_cast<const Pack<S, CPL>*>(p + i);
#pragma unroll
    for (int c = 0; c < CPL; ++c) x[c] = to_float(v.x[c]);
    return;
  }
#pragma unroll
  for (int c = 0; c < CPL; ++c) x[c] = c < valid ? to_float(p[i + c]) : 0.f;
}

template <typename S, int CPL>
__device__ __forceinline__ void store_state(S* p, int64_t i, int valid, const float* x) {
  if (valid >= CPL && reinterpret_cast<uintptr_t>(p + i) % sizeof(Pack<S, CPL>) == 0) {
    Pack<S, CPL> v;
#pragma unroll
    for (int c = 0; c < CPL; ++c) v.x[c] = from_float<S>(x[c]);
    *reinterpret_cast<Pack<S, CPL>*>(p + i) = v;
    return;
  }
#pragma unroll
  for (int c = 0; c < CPL; ++c)
    if (c < valid) p[i + c] = from_float<S>(x[c]);
}

// State element type S (fp32 or bf16), CPL adjacent columns per lane (32 * CPL columns a block), WARPS warps
// splitting the K <= KMAX rows. The launch bounds let as many blocks share an SM as their state registers allow
// (a thread's KMAX / WARPS * CPL state values, plus about 48 registers of its own): many small blocks on an SM keep
// its loads of one block's state in flight while another computes.
template <typename S, int CPL, int WARPS, int KMAX>
struct Shape {
  static constexpr int kRows = KMAX / WARPS;  // state rows per thread
  static constexpr int kCols = 32 * CPL;
  static constexpr int kRegs = kRows * CPL + 48;
  static constexpr int kMinBlocks = 65536 / (WARPS * 32 * kRegs) > 0 ? 65536 / (WARPS * 32 * kRegs) : 1;
};

template <typename S, int CPL, int WARPS, int KMAX>
__global__ void __launch_bounds__(WARPS * 32, (Shape<S, CPL, WARPS, KMAX>::kMinBlocks))
    recurrent_kernel(Gdn2Params p) {
  using Sh = Shape<S, CPL, WARPS, KMAX>;
  constexpr int RPT = Sh::kRows;
  const int col0 = blockIdx.x * Sh::kCols, hv = blockIdx.y, n = blockIdx.z;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, col = col0 + CPL * lane;
  const int K = p.K, V = p.V, group = p.HV / p.H, hq = hv / group;
  const int valid = V - col;  // this lane's columns in range: min(CPL, valid)
  __shared__ float sq[KMAX], sk[KMAX], seg[KMAX], sbk[KMAX];
  __shared__ float red[WARPS][Sh::kCols];
  __shared__ float scratch[WARPS];
  const S* h0 = static_cast<const S*>(p.h0);
  S* ht = static_cast<S*>(p.ht);

  // State slice: rows warp*RPT + i, columns col .. col + CPL - 1 (all loads issued before any is used).
  float s[RPT][CPL];
  const int64_t state_base = ((int64_t)n * p.HV + hv) * K * V;
#pragma unroll
  for (int i = 0; i < RPT; ++i) {
    const int r = warp * RPT + i;
    if (h0 != nullptr && r < K) {
      load_state<S, CPL>(h0, state_base + (int64_t)r * V + col, valid, s[i]);
    } else {
#pragma unroll
      for (int c = 0; c < CPL; ++c) s[i][c] = 0.f;
    }
  }
  int64_t t0, t1;
  sequence_range(p, n, t0, t1);
  for (int64_t tok = t0; tok < t1; ++tok) {
    // w ⊙ v on this lane's columns, loaded before the barriers below (it does not depend on the state).
    float x[CPL];
#pragma unroll
    for (int c = 0; c < CPL; ++c) {
      const int64_t vi = tok * p.v.stride_token + hv * p.v.stride_head + col + c;
      x[c] = c < valid ? load_gate(p.w, tok, hv, group, p.HV, col + c, 1.f) * load_elem(p.v.ptr, p.v.type, vi) : 0.f;
    }
    // q, k, exp(g), b for this token, shared by the block; the norms of q and k are folded in below.
    float qss = 0.f, kss = 0.f;
    for (int d = threadIdx.x; d < K; d += blockDim.x) {
      const float qd = load_elem(p.q.ptr, p.q.type, tok * p.q.stride_token + hq * p.q.stride_head + d);
      const float kd = load_elem(p.k.ptr, p.k.type, tok * p.k.stride_token + hq * p.k.stride_head + d);
      sq[d] = qd;
      sk[d] = kd;
      qss += qd * qd;
      kss += kd * kd;
      seg[d] = __expf(load_decay(p, tok, hv, d));
      sbk[d] = load_gate(p.b, tok, hv, group, p.HV, d, 0.f);
    }
    float qscale = p.scale, kscale = 1.f;
    if (p.l2norm) {
      qscale *= rsqrtf(block_sum<WARPS>(qss, scratch) + 1e-6f);
      kscale = rsqrtf(block_sum<WARPS>(kss, scratch) + 1e-6f);
    }
    __syncthreads();
    // Decay and erase read: e = S^T (b ⊙ k).
    float acc[CPL] = {};
#pragma unroll
    for (int i = 0; i < RPT; ++i) {
      const int r = warp * RPT + i;
      if (r < K) {
        const float e = seg[r], bk = sbk[r] * sk[r] * kscale;
#pragma unroll
        for (int c = 0; c < CPL; ++c) {
          s[i][c] *= e;
          acc[c] += bk * s[i][c];
        }
      }
    }
#pragma unroll
    for (int c = 0; c < CPL; ++c) red[warp][CPL * lane + c] = acc[c];
    __syncthreads();
    float u[CPL];
#pragma unroll
    for (int c = 0; c < CPL; ++c) {
      float erase = 0.f;
#pragma unroll
      for (int w = 0; w < WARPS; ++w) erase += red[w][CPL * lane + c];
      u[c] = c < valid ? x[c] - erase : 0.f;
    }
    __syncthreads();
    // Write and read: S += k u^T; o = S^T (scale q).
    float oacc[CPL] = {};
#pragma unroll
    for (int i = 0; i < RPT; ++i) {
      const int r = warp * RPT + i;
      if (r < K) {
        const float kr = sk[r] * kscale, qr = sq[r] * qscale;
#pragma unroll
        for (int c = 0; c < CPL; ++c) {
          s[i][c] += kr * u[c];
          oacc[c] += qr * s[i][c];
        }
      }
    }
#pragma unroll
    for (int c = 0; c < CPL; ++c) red[warp][CPL * lane + c] = oacc[c];
    __syncthreads();
    if (warp == 0) {
#pragma unroll
      for (int c = 0; c < CPL; ++c) {
        float o = 0.f;
#pragma unroll
        for (int w = 0; w < WARPS; ++w) o += red[w][CPL * lane + c];
        if (c < valid) store_elem(p.o, p.o_type, (tok * p.HV + hv) * V + col + c, o);
      }
    }
    __syncthreads();
  }
  if (ht != nullptr) {
#pragma unroll
    for (int i = 0; i < RPT; ++i) {
      const int r = warp * RPT + i;
      if (r < K) store_state<S, CPL>(ht, state_base + (int64_t)r * V + col, valid, s[i]);
    }
  }
}

template <typename S, int CPL, int WARPS>
void launch_shape(const Gdn2Params& p) {
  auto go = [&](auto kmax) {
    constexpr int KMAX = decltype(kmax)::value;
    using Sh = Shape<S, CPL, WARPS, KMAX>;
    const dim3 grid((p.V + Sh::kCols - 1) / Sh::kCols, p.HV, p.N), block(WARPS * 32);
    recurrent_kernel<S, CPL, WARPS, KMAX><<<grid, block, 0, p.stream>>>(p);
  };
  if (p.K <= 32)
    go(std::integral_constant<int, 32>{});
  else if (p.K <= 64)
    go(std::integral_constant<int, 64>{});
  else if (p.K <= 128)
    go(std::integral_constant<int, 128>{});
  else if (p.K <= 256)
    go(std::integral_constant<int, 256>{});
  else
    GDN2_THROW(UnsupportedError, "CUDA GDN-2 recurrent kernel: K=", p.K, " above 256");
}

// GDN2_RECURRENT_SHAPE=<columns per lane><warps> (14, 18, 116, 24, 28, 48 or 416) forces a block shape, for tuning
// the choice below on a new GPU (gdn2 ops cuda-bench --decode-only times every batch).
template <typename S>
void launch_state(const Gdn2Params& p) {
  int shape = 0;
  if (const char* e = std::getenv("GDN2_RECURRENT_SHAPE")) shape = std::atoi(e);
  switch (shape) {
    case 14: return launch_shape<S, 1, 4>(p);
    case 18: return launch_shape<S, 1, 8>(p);
    case 116: return launch_shape<S, 1, 16>(p);
    case 24: return launch_shape<S, 2, 4>(p);
    case 28: return launch_shape<S, 2, 8>(p);
    case 48: return launch_shape<S, 4, 8>(p);
    case 416: return launch_shape<S, 4, 16>(p);
    default: break;
  }
  // Measured on the H100 (gdn2 ops cuda-bench --decode-only, K = V = 128): few heads (batch 1) want narrow blocks of
  // many warps; up to twice the SMs in 128-column blocks, 64 columns and 8 warps; beyond, 128 columns and 8 warps.
  auto blocks = [&](int cols) { return static_cast<int64_t>(p.N) * p.HV * ((p.V + cols - 1) / cols); };
  if (blocks(32) <= sm_count())
    launch_shape<S, 1, 16>(p);
  else if (blocks(128) < 2 * sm_count())
    launch_shape<S, 2, 8>(p);
  else
    launch_shape<S, 4, 8>(p);
}

}  // namespace

int sm_count() {
  static const int n = [] {
    int dev = 0, count = 0;
    cudaGetDevice(&dev);
    cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, dev);
    return count > 0 ? count : 132;
  }();
  return n;
}

void launch_recurrent(const Gdn2Params& p) {
  if (p.N == 0) return;
  GDN2_CHECK(p.state_type == ElemType::f32 || p.state_type == ElemType::bf16, UnsupportedError,
             "CUDA GDN-2 recurrent kernel: the state must be fp32 or bf16");
  if (p.state_type == ElemType::f32)
    launch_state<float>(p);
  else
    launch_state<__nv_bfloat16>(p);
  GDN2_CUDA_CHECK(cudaGetLastError());
}

}  // namespace gdn2::cuda
