// The dk/dv kernel of the tensor-core attention backward: a block takes kN = 16·kWarps keys of one (batch, kv head),
// each warp 16 of them, keeps K and V in shared memory and walks, for each query head of the group in order and
// within it each tile of kMq query rows that see the block's keys in order, through Q, dO, lse and delta (double-
// buffered by cp.async). Per tile, in the transposed orientation so that a warp owns its keys' rows: Sᵀ = K Qᵀ and
// dPᵀ = V dOᵀ on the tensor cores, Pᵀ = exp(scale·Sᵀ − lse) recomputed in fp32, dSᵀ = Pᵀ ⊙ (dPᵀ − delta),
// dV += Pᵀ dO, dK += dSᵀ Q; finally dk = scale·dK. Each dk, dv element is one thread's fp32 accumulator summed in that
// fixed order, so the sum over the group is deterministic without atomics.
#include <algorithm>

#include "cuda/stream.h"
#include "cuda/attention_params.h"
#include "cuda/attention_tc.cuh"
#include "cuda/common.cuh"

namespace gdn2::cuda {

namespace {

using namespace attn;

template <int D>
struct DkvTile {
  static constexpr int kWarps = 4;
  static constexpr int kN = 16 * kWarps;       // keys per block
  static constexpr int kMq = D <= 64 ? 64 : 32;  // query rows per step
  static constexpr int kThreads = 32 * kWarps;
  static constexpr int kLd = D + 8;
  // K and V [kN][kLd], Q and dO each two buffers of [kMq][kLd], then lse·log2(e) and delta, two buffers of [kMq] each.
  template <class T>
  static constexpr size_t smem_bytes() {
    return static_cast<size_t>(2 * kN + 4 * kMq) * kLd * sizeof(T) + 4 * kMq * sizeof(float);
  }
};

template <class T, int D>
__global__ void __launch_bounds__(DkvTile<D>::kThreads) attention_dkdv_tc_kernel(AttnParams a, T* __restrict__ dk,
                                                                                 T* __restrict__ dv) {
  using Tile = DkvTile<D>;
  constexpr int kN = Tile::kN, kMq = Tile::kMq, kLd = Tile::kLd, kThreads = Tile::kThreads;
  extern __shared__ uint4 attn_smem[];
  T* sK = reinterpret_cast<T*>(attn_smem);
  T* sV = sK + kN * kLd;
  T* sQ = sV + kN * kLd;     // two buffers of [kMq][kLd]
  T* sO = sQ + 2 * kMq * kLd;  // dO, likewise
  float* sL = reinterpret_cast<float*>(sO + 2 * kMq * kLd);  // two buffers of [kMq]
  float* sD = sL + 2 * kMq;

  const int warp = static_cast<int>(threadIdx.x) / 32, lane = static_cast<int>(threadIdx.x) % 32;
  const int g = lane / 4, t = lane % 4;
  const int64_t b = blockIdx.z, hk = blockIdx.y, G = a.group(), off = a.offset();
  const int64_t j0 = static_cast<int64_t>(blockIdx.x) * kN;  // earliest keys (seen by most rows) first
  const int64_t j_last = std::min<int64_t>(j0 + kN, a.Tk) - 1;
  // Query rows that see some key of the block: [i_lo, i_hi] (empty when the window has passed all of them), walked
  // in `tiles` steps of kMq rows for each of the G query heads.
  const int64_t i_lo = std::max<int64_t>(0, j0 - off);
  const int64_t i_hi = a.W > 0 ? std::min<int64_t>(a.Tq - 1, j_last + a.W - 1 - off) : a.Tq - 1;
  const int64_t tiles = i_lo <= i_hi ? ceil_div(i_hi - i_lo + 1, kMq) : 0, steps = G * tiles;

  const int64_t q_stride = a.Hq * D, k_stride = a.Hkv * D;
  const int64_t kv_at = (b * a.Tk * a.Hkv + hk) * D;
  // Step s: query head hk·G + s / tiles, rows from i_lo + (s % tiles)·kMq.
  auto step_row0 = [&](int64_t s) { return i_lo + s % tiles * kMq; };
  auto load_step = [&](int64_t s, int buf) {
    const int64_t h = hk * G + s / tiles, i0 = step_row0(s);
    const int64_t q_at = (b * a.Tq * a.Hq + h) * D, stat = (b * a.Hq + h) * a.Tq;
    load_tile_async<T, kMq, D, kLd, kThreads>(sQ + buf * kMq * kLd, static_cast<const T*>(a.q) + q_at, i0, a.Tq,
                                              q_stride);
    load_tile_async<T, kMq, D, kLd, kThreads>(sO + buf * kMq * kLd, static_cast<const T*>(a.d_o) + q_at, i0, a.Tq,
                                              q_stride);
    for (int r = static_cast<int>(threadIdx.x); r < kMq; r += kThreads) {
      const int64_t i = i0 + r;
      sL[buf * kMq + r] = i < a.Tq ? a.lse[stat + i] * kLog2e : 0.f;
      sD[buf * kMq + r] = i < a.Tq ? a.delta[stat + i] : 0.f;
    }
  };

  // The warp's keys jw0 .. jw0 + 15 (those < Tk exist); the thread's keys g and g + 8 of them.
  const int r0 = 16 * warp;
  const int64_t jw0 = j0 + r0, jw1 = jw0 + 15;
  const bool active = jw0 < a.Tk;
  const float sl2 = a.scale * kLog2e;
  float dk_acc[D / 8][4] = {}, dv_acc[D / 8][4] = {};

  if (steps > 0) {
    load_tile_async<T, kN, D, kLd, kThreads>(sK, static_cast<const T*>(a.k) + kv_at, j0, a.Tk, k_stride);
    load_tile_async<T, kN, D, kLd, kThreads>(sV, static_cast<const T*>(a.v) + kv_at, j0, a.Tk, k_stride);
    load_step(0, 0);
    cp_async_commit();
  }
  for (int64_t s = 0; s < steps; ++s) {
    const int buf = static_cast<int>(s & 1);
    if (s + 1 < steps) load_step(s + 1, buf ^ 1);  // the buffers the previous step read (all warps are past them)
    cp_async_commit();
    cp_async_wait<1>();  // every group but the one just committed: K, V and step s have landed
    __syncthreads();
    const T* tq = sQ + buf * kMq * kLd;
    const T* to = sO + buf * kMq * kLd;
    const float* tl = sL + buf * kMq;
    const float* td = sD + buf * kMq;
    const int64_t i0 = step_row0(s);
    const int64_t p0 = off + i0, p1 = off + std::min<int64_t>(i0 + kMq - 1, a.Tq - 1);  // valid rows' positions
    if (active && span_any_visible(p0, p1, jw0, jw1, a.W)) {
      // Sᵀ = K Qᵀ and dPᵀ = V dOᵀ: the warp's 16 key rows against the step's kMq query rows, Q and dO as [n][k].
      float st[kMq / 8][4] = {}, dpt[kMq / 8][4] = {};
#pragma unroll 2
      for (int kk = 0; kk < D / 16; ++kk) {
        uint32_t ak[4], av[4];
        ldsm_a(ak, sK, kLd, r0, 16 * kk, lane);
        ldsm_a(av, sV, kLd, r0, 16 * kk, lane);
        mma_row_nk<T, kMq>(st, ak, tq, kLd, 16 * kk, lane);
        mma_row_nk<T, kMq>(dpt, av, to, kLd, 16 * kk, lane);
      }
      // Rows past Tq are masked too (their lse and delta are stand-ins).
      const bool mask = !span_all_visible(p0, p1, jw0, jw1, a.W) || i0 + kMq > a.Tq;
#pragma unroll
      for (int nt = 0; nt < kMq / 8; ++nt)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int c = 8 * nt + 2 * t + (e & 1);  // query row i0 + c
          const int64_t j = jw0 + g + 8 * (e >> 1);
          const bool seen = !mask || (i0 + c < a.Tq && key_visible(off + i0 + c, j, a.W));
          const float p = seen ? exp2f(fmaf(st[nt][e], sl2, -tl[c])) : 0.f;
          dpt[nt][e] = p * (dpt[nt][e] - td[c]);  // dSᵀ
          st[nt][e] = p;                          // Pᵀ
        }
      // dV += Pᵀ dO and dK += dSᵀ Q, the A fragments straight from the accumulators; dO and Q read as [k][n].
#pragma unroll
      for (int kk = 0; kk < kMq / 16; ++kk) {
        uint32_t pa[4], da[4];
        acc_to_a<T>(pa, st[2 * kk], st[2 * kk + 1]);
        acc_to_a<T>(da, dpt[2 * kk], dpt[2 * kk + 1]);
        mma_row_kn<T, D>(dv_acc, pa, to, kLd, 16 * kk, lane);
        mma_row_kn<T, D>(dk_acc, da, tq, kLd, 16 * kk, lane);
      }
    }
    __syncthreads();  // every warp is done with buffer buf before the next step refills it
  }

  // Keys no query sees (steps = 0, or rows the window has passed) get zeros.
  if (!active) return;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int64_t j = jw0 + g + 8 * r;
    if (j >= a.Tk) continue;
    T* krow = dk + ((b * a.Tk + j) * a.Hkv + hk) * D;
    T* vrow = dv + ((b * a.Tk + j) * a.Hkv + hk) * D;
#pragma unroll
    for (int dt = 0; dt < D / 8; ++dt) {
      store2(krow + 8 * dt + 2 * t, dk_acc[dt][2 * r] * a.scale, dk_acc[dt][2 * r + 1] * a.scale);
      store2(vrow + 8 * dt + 2 * t, dv_acc[dt][2 * r], dv_acc[dt][2 * r + 1]);
    }
  }
}

template <class T, int D>
void launch_dkdv(const AttnParams& a, void* dk, void* dv) {
  using Tile = DkvTile<D>;
  const dim3 grid(static_cast<unsigned>(ceil_div(a.Tk, Tile::kN)), static_cast<unsigned>(a.Hkv),
                  static_cast<unsigned>(a.B));
  launch_with_smem(attention_dkdv_tc_kernel<T, D>, grid, Tile::kThreads, Tile::template smem_bytes<T>(), stream(), a,
                   static_cast<T*>(dk), static_cast<T*>(dv));
}

template <class T>
void launch_dkdv_dim(const AttnParams& a, void* dk, void* dv) {
  switch (a.D) {
    case 64: launch_dkdv<T, 64>(a, dk, dv); break;
    case 128: launch_dkdv<T, 128>(a, dk, dv); break;
    default: GDN2_THROW(UnsupportedError, "attention_backward on CUDA: no tensor-core dk/dv kernel for head dim ", a.D);
  }
}

}  // namespace

void attention_tc_dkdv(const AttnParams& a, void* dk, void* dv) {
  if (a.t == ElemType::bf16)
    launch_dkdv_dim<__nv_bfloat16>(a, dk, dv);
  else
    launch_dkdv_dim<__half>(a, dk, dv);
}

}  // namespace gdn2::cuda
