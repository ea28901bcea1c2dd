// The dq kernel of the tensor-core attention backward: a block takes kM = 16·kWarps query rows of one (batch, query
// head), each warp 16 of them, and streams the keys its rows see in tiles of kN (K and V double-buffered by
// cp.async). Per tile: S = Q Kᵀ and dP = dO Vᵀ on the tensor cores, P = exp(scale·S − lse) recomputed in fp32,
// dS = P ⊙ (dP − delta), dQ += dS K; finally dq = scale·dQ. Each dq element is one thread's fp32 accumulator.
#include <algorithm>

#include "cuda/stream.h"
#include "cuda/attention_params.h"
#include "cuda/attention_tc.cuh"
#include "cuda/common.cuh"

namespace gdn2::cuda {

namespace {

using namespace attn;

template <int D>
struct DqTile {
  static constexpr int kWarps = 4;
  static constexpr int kN = 64;  // keys per tile
  static constexpr int kM = 16 * kWarps;
  static constexpr int kThreads = 32 * kWarps;
  static constexpr int kLd = D + 8;
  // Q and dO [kM][kLd], then K and V, each two buffers of [kN][kLd].
  template <class T>
  static constexpr size_t smem_bytes() {
    return static_cast<size_t>(2 * kM + 4 * kN) * kLd * sizeof(T);
  }
};

template <class T, int D>
__global__ void __launch_bounds__(DqTile<D>::kThreads) attention_dq_tc_kernel(AttnParams a, T* __restrict__ dq) {
  using Tile = DqTile<D>;
  constexpr int kM = Tile::kM, kN = Tile::kN, kLd = Tile::kLd, kThreads = Tile::kThreads;
  extern __shared__ uint4 attn_smem[];
  T* sQ = reinterpret_cast<T*>(attn_smem);
  T* sO = sQ + kM * kLd;  // dO
  T* sK = sO + kM * kLd;
  T* sV = sK + 2 * kN * kLd;

  const int warp = static_cast<int>(threadIdx.x) / 32, lane = static_cast<int>(threadIdx.x) % 32;
  const int g = lane / 4, t = lane % 4;
  const int64_t b = blockIdx.z, h = blockIdx.y, hk = h / a.group(), off = a.offset();
  const int64_t i0 = (ceil_div(a.Tq, kM) - 1 - blockIdx.x) * kM;  // latest rows (most keys) first
  const int64_t i_last = std::min<int64_t>(i0 + kM, a.Tq) - 1;
  const int64_t k_lo = a.W > 0 ? std::max<int64_t>(0, off + i0 - a.W + 1) : 0, k_hi = off + i_last;
  const int64_t n_first = k_lo / kN, n_last = k_hi / kN;

  const int64_t q_stride = a.Hq * D, k_stride = a.Hkv * D;
  const T* qp = static_cast<const T*>(a.q) + (b * a.Tq * a.Hq + h) * D;
  const T* op = static_cast<const T*>(a.d_o) + (b * a.Tq * a.Hq + h) * D;
  const T* kp = static_cast<const T*>(a.k) + (b * a.Tk * a.Hkv + hk) * D;
  const T* vp = static_cast<const T*>(a.v) + (b * a.Tk * a.Hkv + hk) * D;
  auto load_kv = [&](int64_t n, int buf) {
    load_tile_async<T, kN, D, kLd, kThreads>(sK + buf * kN * kLd, kp, n * kN, a.Tk, k_stride);
    load_tile_async<T, kN, D, kLd, kThreads>(sV + buf * kN * kLd, vp, n * kN, a.Tk, k_stride);
  };
  load_tile_async<T, kM, D, kLd, kThreads>(sQ, qp, i0, a.Tq, q_stride);
  load_tile_async<T, kM, D, kLd, kThreads>(sO, op, i0, a.Tq, q_stride);
  load_kv(n_first, 0);
  cp_async_commit();

  // The warp's rows i0 + r0 .. + 15, positions of its valid rows [wp0, wp1]; the thread's rows g and g + 8 with
  // their lse (in log2 units) and delta (0 past Tq, where Q and dO are zero rows: dS = 0 there).
  const int r0 = 16 * warp;
  const int64_t wi0 = i0 + r0;
  const bool active = wi0 < a.Tq;
  const int64_t wp0 = off + wi0, wp1 = off + std::min<int64_t>(wi0 + 15, a.Tq - 1);
  const int64_t pos[2] = {wp0 + g, wp0 + g + 8};
  float lse2[2] = {0.f, 0.f}, dlt[2] = {0.f, 0.f};
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int64_t i = wi0 + g + 8 * r;
    if (i < a.Tq) {
      lse2[r] = a.lse[(b * a.Hq + h) * a.Tq + i] * kLog2e;
      dlt[r] = a.delta[(b * a.Hq + h) * a.Tq + i];
    }
  }
  const float sl2 = a.scale * kLog2e;

  float acc[D / 8][4] = {};
  for (int64_t n = n_first; n <= n_last; ++n) {
    const int buf = static_cast<int>(n - n_first) & 1;
    if (n < n_last) load_kv(n + 1, buf ^ 1);  // the buffer the previous iteration read (all warps are past it)
    cp_async_commit();
    cp_async_wait<1>();  // every group but the one just committed: Q, dO and tile n have landed
    __syncthreads();
    const T* tk = sK + buf * kN * kLd;
    const T* tv = sV + buf * kN * kLd;
    const int64_t j0 = n * kN, j1 = j0 + kN - 1;
    if (active && span_any_visible(wp0, wp1, j0, j1, a.W)) {
      float s[kN / 8][4] = {}, dp[kN / 8][4] = {};
#pragma unroll
      for (int kk = 0; kk < D / 16; ++kk) {
        uint32_t aq[4], ao[4];
        ldsm_a(aq, sQ, kLd, r0, 16 * kk, lane);
        ldsm_a(ao, sO, kLd, r0, 16 * kk, lane);
        mma_row_nk<T, kN>(s, aq, tk, kLd, 16 * kk, lane);
        mma_row_nk<T, kN>(dp, ao, tv, kLd, 16 * kk, lane);
      }
      const bool mask = !span_all_visible(wp0, wp1, j0, j1, a.W);
#pragma unroll
      for (int nt = 0; nt < kN / 8; ++nt)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int r = e >> 1;
          const bool seen = !mask || key_visible(pos[r], j0 + 8 * nt + 2 * t + (e & 1), a.W);
          const float p = seen ? exp2f(fmaf(s[nt][e], sl2, -lse2[r])) : 0.f;
          s[nt][e] = p * (dp[nt][e] - dlt[r]);  // dS
        }
      // dQ += dS K, dS as A fragments straight from its accumulators; K read as [key][d] = [k][n].
#pragma unroll
      for (int kk = 0; kk < kN / 16; ++kk) {
        uint32_t da[4];
        acc_to_a<T>(da, s[2 * kk], s[2 * kk + 1]);
        mma_row_kn<T, D>(acc, da, tk, kLd, 16 * kk, lane);
      }
    }
    __syncthreads();  // every warp is done with buffer buf before the next iteration refills it
  }

  if (!active) return;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int64_t i = wi0 + g + 8 * r;
    if (i >= a.Tq) continue;
    T* row = dq + ((b * a.Tq + i) * a.Hq + h) * D;
#pragma unroll
    for (int dt = 0; dt < D / 8; ++dt)
      store2(row + 8 * dt + 2 * t, acc[dt][2 * r] * a.scale, acc[dt][2 * r + 1] * a.scale);
  }
}

template <class T, int D>
void launch_dq(const AttnParams& a, void* dq) {
  using Tile = DqTile<D>;
  const dim3 grid(static_cast<unsigned>(ceil_div(a.Tq, Tile::kM)), static_cast<unsigned>(a.Hq),
                  static_cast<unsigned>(a.B));
  launch_with_smem(attention_dq_tc_kernel<T, D>, grid, Tile::kThreads, Tile::template smem_bytes<T>(), stream(), a,
                   static_cast<T*>(dq));
}

template <class T>
void launch_dq_dim(const AttnParams& a, void* dq) {
  switch (a.D) {
    case 64: launch_dq<T, 64>(a, dq); break;
    case 128: launch_dq<T, 128>(a, dq); break;
    default: GDN2_THROW(UnsupportedError, "attention_backward on CUDA: no tensor-core dq kernel for head dim ", a.D);
  }
}

}  // namespace

void attention_tc_dq(const AttnParams& a, void* dq) {
  if (a.t == ElemType::bf16)
    launch_dq_dim<__nv_bfloat16>(a, dq);
  else
    launch_dq_dim<__half>(a, dq);
}

}  // namespace gdn2::cuda
