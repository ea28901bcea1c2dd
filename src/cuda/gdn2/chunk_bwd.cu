// Chunkwise GDN-2 backward, fp32 throughout, over chunks of 32 tokens (the math of src/cpu/gdn2_chunk.cpp,
// ChunkKernel::backward). The matrix products of the state-gradient pass and of the gradient kernel run on tensor cores
// in 3xTF32 (mma.cuh, mma3_rows: fp32-level accuracy); the preparation, the triangular solves and the elementwise chain
// rule on CUDA cores. Four steps after the forward's chunk states are recomputed
// (src/cuda/gdn2_ops.cu: every 32 tokens by the exact fp32 forward, or every 64 by the tensor-core forward):
//   1. chunk_coef_kernel, one block per (chunk, value head), all chunks at once: s q̂⊙Γ, W = (I + T)^-1 (b⊙k̂⊙Γ),
//      Kt = k̂ e^{G_last - G}, P and γ = e^{G_last} (and U = (I + T)^-1 (w⊙v) for states every 64 tokens), written
//      once to bp.coef. With states every 64 tokens, chunk_substate_kernel forms those entering the odd 32-token
//      chunks from them (one exact chunk step per 64-token chunk, all in parallel).
//   2. chunk_dstate_kernel, one block per (64 columns of V, value head, segment of a sequence), walks the chunks in
//      reverse with the state gradient slice dS in shared memory, the next chunk's coefficients arriving by cp.async
//      while the current one is computed: dh[c] = dS (the gradient wrt the state leaving chunk c), then
//      dV' = Kt dS + P^T dO and dS <- Diag(γ) dS + (s q⊙Γ)^T dO - W^T dV'; dh0 = dS at the start. Long sequences with
//      few blocks run as segments side by side (context parallelism, params.h Gdn2BwdParams).
//   3. chunk_grad_kernel, one block per (chunk, value head), all chunks at once: with S = h[c] and dS = dh[c], over
//      slices of 64 columns it forms V' = U - W S and dV', and accumulates dP, dKt, d(q⊙Γ), dW, dT and dγ; then the
//      solves' adjoints, the decayed pair scores' backward, the cumsum's and the L2 norm's. Gradients are written
//      per value head (gq .. gw), every exponent a difference G_i - G_j <= 0 as in the forward.
//   4. launch_reduce_heads sums them over value-head groups (and channels, for per-head gates) in a fixed order.
#include <algorithm>

#include "cuda/common.cuh"
#include "cuda/gdn2/kernels.h"
#include "cuda/gdn2/chunk_prep.cuh"
#include "cuda/gdn2/load.cuh"
#include "cuda/gdn2/mma.cuh"
#include "cuda/gdn2/segment_scan.cuh"

namespace gdn2::cuda {

namespace {

constexpr int kC = kPrepChunk, kCols = kPrepCols, kThreads = kPrepThreads;

// Offsets of one (chunk, value head)'s coefficients in bp.coef (kernels.h, chunk_coef_floats): rows past the chunk and
// channels past K are zeros.
// U [kC][coef_u_cols] follows when coef_u_cols > 0 (the 64-token sub-states need it).
template <int KMAX>
struct CoefLayout {
  static constexpr int kQ = 0, kW = kC * KMAX, kKt = 2 * kC * KMAX, kP = 3 * kC * KMAX, kGamma = kP + kC * kC;
  static constexpr int kU = kGamma + KMAX;
  static_assert(kU == chunk_coef_floats(KMAX), "kernels.h chunk_coef_floats");
};

// The coefficients of (chunk c, value head hv) in bp.coef.
template <int KMAX>
__device__ __forceinline__ float* coef_at(const Gdn2BwdParams& bp, int64_t c, int hv) {
  return bp.coef + (c * bp.f.HV + hv) * chunk_coef_floats(KMAX, bp.coef_u_cols);
}

template <int KMAX>
struct CoefSmem {
  Prep<KMAX> c;
  float X[kC][kCols + 1];  // a 64-column slice of w⊙v, then of U
};

template <int KMAX>
__global__ void __launch_bounds__(kThreads, 1) chunk_coef_kernel(Gdn2BwdParams bp) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  CoefSmem<KMAX>& cs = *reinterpret_cast<CoefSmem<KMAX>*>(smem_raw);
  Prep<KMAX>& sm = cs.c;
  using Lay = CoefLayout<KMAX>;
  const Gdn2Params& p = bp.f;
  const int c = blockIdx.x, hv = blockIdx.y, tid = threadIdx.x;
  const int64_t c0 = bp.chunk_tok0[c];
  const int L = static_cast<int>(bp.chunk_len[c]);
  chunk_prep(sm, p, c0, L, hv);
  chunk_gamma_scale(sm, p.scale, kC, KMAX);  // every row and channel (zeros past L and K)
  __syncthreads();
  solve_lower<Prep<KMAX>::KP>(sm.T, sm.bk, L, p.K);  // W = (I + T)^-1 (b⊙k̂⊙Γ)
  __syncthreads();
  float* out = coef_at<KMAX>(bp, c, hv);
  for (int idx = tid; idx < kC * KMAX; idx += kThreads) {
    const int t = idx / KMAX, d = idx % KMAX;
    out[Lay::kQ + idx] = sm.q[t][d];
    out[Lay::kW + idx] = sm.bk[t][d];
    out[Lay::kKt + idx] = sm.G[t][d];
  }
  float* tp = bp.tp + (static_cast<int64_t>(c) * p.HV + hv) * 2 * kC * kC;
  for (int idx = tid; idx < kC * kC; idx += kThreads) {
    const float t = sm.T[idx / kC][idx % kC], pr = sm.P[idx / kC][idx % kC];
    out[Lay::kP + idx] = pr;
    tp[idx] = t;
    tp[kC * kC + idx] = pr;
  }
  for (int d = tid; d < KMAX; d += kThreads) out[Lay::kGamma + d] = __expf(sm.gl[d]);
  // U = (I + T)^-1 (w⊙v), 64 columns at a time.
  const int ucols = bp.coef_u_cols;
  for (int v0 = 0; v0 < ucols; v0 += kCols) {
    float wr[kPrepTilePieces][8], vr[kPrepTilePieces][8];
    load_w_v(p, c0, L, hv, v0, wr, vr);
    __syncthreads();  // the previous slice is written out
#pragma unroll
    for (int u = 0; u < kPrepTilePieces; ++u)
#pragma unroll
      for (int e = 0; e < 8; ++e) cs.X[piece_row<kThreads>(u)][piece_col<kThreads>(u) + e] = wr[u][e] * vr[u][e];
    __syncthreads();
    solve_lower<kCols + 1>(sm.T, cs.X, L, kCols);
    __syncthreads();
    for (int idx = tid; idx < kC * kCols; idx += kThreads) {
      const int t = idx / kCols, cc = idx % kCols;
      out[Lay::kU + static_cast<int64_t>(t) * ucols + v0 + cc] = cs.X[t][cc];
    }
  }
}

// The states entering the 32-token chunks from the tensor-core forward's states every 64 tokens: h[first32[c]] =
// h64[c] and, where 64-token chunk c is longer than 32 tokens, h[first32[c] + 1] = Diag(γ) S + Kt^T (U - W S) with S =
// h64[c] and the coefficients of its first 32 tokens (the exact chunk step of chunk_fwd.cu, on formed coefficients).
// One block per (64 columns, value head, 64-token chunk).
template <int KMAX>
struct SubstateSmem {
  float S[KMAX][kCols];
  float X[kC][kCols];  // U, then V' = U - W S
  float W[kC][KMAX + 1];
  float Kt[kC][KMAX + 1];
  float gamma[KMAX];
};

template <int KMAX>
__global__ void __launch_bounds__(kThreads, 1) chunk_substate_kernel(Gdn2BwdParams bp) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  SubstateSmem<KMAX>& sm = *reinterpret_cast<SubstateSmem<KMAX>*>(smem_raw);
  using Lay = CoefLayout<KMAX>;
  const Gdn2Params& p = bp.f;
  const int col0 = blockIdx.x * kCols, hv = blockIdx.y, c64 = blockIdx.z, tid = threadIdx.x;
  const int K = p.K, V = p.V;
  const int64_t KV = static_cast<int64_t>(K) * V, j = bp.first32[c64];
  const bool second = bp.len64[c64] > kC;
  const float* src = bp.h64 + (static_cast<int64_t>(c64) * p.HV + hv) * KV;
  float* dst = bp.h_sub + (j * p.HV + hv) * KV;
  const float* cf = coef_at<KMAX>(bp, j, hv);
  if (second) {  // the first half's coefficients arrive while the state slice is copied
    for (int idx = tid; idx < kC * KMAX; idx += kThreads) {
      const int t = idx / KMAX, d = idx % KMAX;
      cp_async_4(&sm.W[t][d], cf + Lay::kW + idx);
      cp_async_4(&sm.Kt[t][d], cf + Lay::kKt + idx);
    }
    for (int idx = tid; idx < kC * kCols; idx += kThreads) {
      const int t = idx / kCols, cc = idx % kCols;
      if (col0 + cc < V)
        cp_async_4(&sm.X[t][cc], cf + Lay::kU + static_cast<int64_t>(t) * bp.coef_u_cols + col0 + cc);
      else
        sm.X[t][cc] = 0.f;
    }
    for (int d = tid; d < KMAX; d += kThreads) cp_async_4(&sm.gamma[d], cf + Lay::kGamma + d);
    cp_async_commit();
  }
  {  // loads in batches held in registers, then the stores
    constexpr int kIters = KMAX * kCols / kThreads, kBatch = 8;
#pragma unroll 1
    for (int u0 = 0; u0 < kIters; u0 += kBatch) {
      float x[kBatch];
#pragma unroll
      for (int u = 0; u < kBatch; ++u) {
        const int idx = tid + (u0 + u) * kThreads, d = idx / kCols, col = col0 + idx % kCols;
        x[u] = d < K && col < V ? src[static_cast<int64_t>(d) * V + col] : 0.f;
      }
#pragma unroll
      for (int u = 0; u < kBatch; ++u) {
        const int idx = tid + (u0 + u) * kThreads, d = idx / kCols, cc = idx % kCols, col = col0 + cc;
        sm.S[d][cc] = x[u];
        if (d < K && col < V) dst[static_cast<int64_t>(d) * V + col] = x[u];
      }
    }
  }
  if (!second) return;
  cp_async_wait<0>();
  __syncthreads();
  subtract_w_state(sm.W, sm.S, K, kC, sm.X);  // V' = U - W S (chunk_prep.cuh)
  __syncthreads();
  advance_state(sm.Kt, sm.X, sm.gamma, K, kC, sm.S);  // S <- Diag(γ) S + Kt^T V'
  __syncthreads();
  dst += static_cast<int64_t>(p.HV) * KV;
  for (int idx = tid; idx < K * kCols; idx += kThreads) {
    const int d = idx / kCols, cc = idx % kCols, col = col0 + cc;
    if (col < V) dst[static_cast<int64_t>(d) * V + col] = sm.S[d][cc];
  }
}

// One chunk's coefficients in shared memory. Row strides for conflict-free tensor-core fragment loads: q, W and P
// are read transposed (stride = 8 mod 32 words), Kt by rows (4 mod 32).
template <int KMAX>
struct CoefTile {
  static constexpr int LDT = KMAX + 8, LDK = KMAX + 4, LDP = kC + 8;
  float q[kC][LDT];  // s q̂⊙Γ
  float W[kC][LDT];
  float Kt[kC][LDK];
  float P[kC][LDP];
  float gamma[KMAX];
};

template <int KMAX>
__device__ __forceinline__ void coef_prefetch(CoefTile<KMAX>& t, const float* g) {
  using Lay = CoefLayout<KMAX>;
  constexpr int R = KMAX / 4;  // 16-byte pieces of a row
  for (int idx = threadIdx.x; idx < kC * R; idx += kThreads) {
    const int r = idx / R, d = 4 * (idx % R);
    cp_async_16(&t.q[r][d], g + Lay::kQ + r * KMAX + d);
    cp_async_16(&t.W[r][d], g + Lay::kW + r * KMAX + d);
    cp_async_16(&t.Kt[r][d], g + Lay::kKt + r * KMAX + d);
  }
  for (int idx = threadIdx.x; idx < kC * kC / 4; idx += kThreads) {
    const int r = idx / (kC / 4), j = 4 * (idx % (kC / 4));
    cp_async_16(&t.P[r][j], g + Lay::kP + r * kC + j);
  }
  for (int idx = threadIdx.x; idx < KMAX / 4; idx += kThreads) cp_async_16(&t.gamma[4 * idx], g + Lay::kGamma + 4 * idx);
  cp_async_commit();
}

template <int KMAX>
struct DstateSmem {
  static constexpr int LDS = kCols + 8;  // B operands read by rows: stride = 8 mod 32 words
  CoefTile<KMAX> coef[2];  // the current chunk's and the next one's (double buffer)
  float dO[kC][LDS];
  float dV[kC][LDS];  // -dV'
  float dS[KMAX][LDS];
};

// One block per (64 columns, value head, segment). kTransition: the context-parallel first pass over every segment
// but its sequence's first (params.h, Gdn2BwdParams): from a zero gradient, columns past vpad are the transition's
// (identity at entry, dO = 0); [dS0 | M] goes to seg_state. Otherwise the pass proper: dh per chunk, dh0. The two
// products of a chunk step run on tensor cores in 3xTF32 (mma.cuh, mma3_rows), fp32-level accuracy.
template <int KMAX, bool kTransition>
__global__ void __launch_bounds__(kThreads, 1) chunk_dstate_kernel(Gdn2BwdParams bp) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  DstateSmem<KMAX>& sm = *reinterpret_cast<DstateSmem<KMAX>*>(smem_raw);
  using Tile = CoefTile<KMAX>;
  const Gdn2Params& p = bp.f;
  const int col0 = blockIdx.x * kCols, hv = blockIdx.y, seg = blockIdx.z, tid = threadIdx.x;
  const int warp = tid >> 5, lane = tid & 31;
  const int K = p.K, V = p.V;
  const auto [n, c_first, c_last, first, last] = segment_of(bp.seg_seq, bp.seg_chunk0, bp.seq_chunk0, seg);
  if (kTransition && first) return;
  const bool trans = kTransition && col0 >= bp.vpad;  // transition columns: dO = 0
  const int64_t state_base = (static_cast<int64_t>(n) * p.HV + hv) * K * V;
  const int64_t seg_blk = static_cast<int64_t>(seg) * p.HV + hv;
  auto coef_of = [&](int c) { return coef_at<KMAX>(bp, c, hv); };
  if (c_last > c_first) coef_prefetch(sm.coef[0], coef_of(c_last - 1));
  for (int idx = tid; idx < KMAX * kCols; idx += kThreads) {
    const int d = idx / kCols, cc = idx % kCols;
    sm.dS[d][cc] = reverse_pass_entry(kTransition, last, d, col0 + cc, K, V, bp.vpad, KMAX, seg_blk, bp.seg_dS, bp.dht,
                                      state_base);
  }
  // Product 1 (-dV'): warp w, rows 16 (w & 1) .. +15 and columns 16 (w >> 1) .. +15. Product 2 (dS): key rows
  // 16 (w % RT) .. +15 and the w / RT-th of 8 / RT column groups.
  constexpr int RT = KMAX / 16, WPR = 8 / RT, NT2 = 8 / WPR;
  const int r1 = 16 * (warp & 1), n1 = 16 * (warp >> 1);
  const int r2 = 16 * (warp % RT), n2 = (warp / RT) * (kCols / WPR);
  const int k_key = (K + 7) / 8;
  // dO of a chunk, loaded into registers one chunk step ahead (thread elements idx = tid + u kThreads).
  constexpr int kIters = kC * kCols / 8 / kThreads;  // pieces of eight columns (load.cuh, load_value_tile)
  float o_next[kIters][8];
  auto load_dO = [&](int c) {
    load_value_tile<kIters, kThreads, kCols>(o_next, bp.d_o, bp.d_o_type, bp.chunk_tok0[c],
                                             trans ? 0 : static_cast<int>(bp.chunk_len[c]), hv, p.HV, V, col0);
  };
  if (c_last > c_first) load_dO(c_last - 1);
  int buf = 0;
  for (int c = c_last - 1; c >= c_first; --c, buf ^= 1) {
    const int L = static_cast<int>(bp.chunk_len[c]);
    __syncthreads();  // the previous chunk is done with every buffer, the other coefficient tile included
    const bool more = c > c_first;
    if (more) coef_prefetch(sm.coef[buf ^ 1], coef_of(c - 1));
#pragma unroll
    for (int u = 0; u < kIters; ++u)
#pragma unroll
      for (int e = 0; e < 8; ++e) sm.dO[piece_row<kThreads>(u)][piece_col<kThreads>(u) + e] = o_next[u][e];
    if (more) load_dO(c - 1);  // in flight during this step
    if (!kTransition) {
      float* dh = bp.dh + (static_cast<int64_t>(c) * p.HV + hv) * K * V;
      for (int idx = tid; idx < KMAX * kCols; idx += kThreads) {
        const int d = idx / kCols, cc = idx % kCols, col = col0 + cc;
        if (d < K && col < V) dh[static_cast<int64_t>(d) * V + col] = sm.dS[d][cc];
      }
    }
    if (more)
      cp_async_wait<1>();  // this chunk's tile (the group before the one just issued)
    else
      cp_async_wait<0>();
    __syncthreads();
    const Tile& cf = sm.coef[buf];
    const int k_tok = (L + 7) / 8;  // rows past L of q, W, Kt, P and dO are zeros
    {  // -dV' = -(Kt dS + P^T dO); P^T is upper triangular, so its 8-blocks start at the row block.
      float acc[2][4];
      zero(acc);
      mma3_rows(acc, [&](int r, int k) { return cf.Kt[r][k]; }, [&](int k, int n) { return sm.dS[k][n]; }, r1, n1, 0,
                k_key, lane);
      mma3_rows(acc, [&](int r, int k) { return cf.P[k][r]; }, [&](int k, int n) { return sm.dO[k][n]; }, r1, n1, r1,
                k_tok > r1 / 8 ? k_tok - r1 / 8 : 0, lane);
#pragma unroll
      for (int nt = 0; nt < 2; ++nt)
#pragma unroll
        for (int h = 0; h < 4; ++h) sm.dV[acc_row(r1, lane, h)][acc_col(n1, lane, nt, h)] = -acc[nt][h];
    }
    __syncthreads();
    {  // dS <- Diag(γ) dS + (s q̂⊙Γ)^T dO + W^T (-dV'): each warp reads and writes only its own part of dS.
      float acc[NT2][4];
#pragma unroll
      for (int nt = 0; nt < NT2; ++nt)
#pragma unroll
        for (int h = 0; h < 4; ++h) {
          const int d = acc_row(r2, lane, h);
          acc[nt][h] = cf.gamma[d] * sm.dS[d][acc_col(n2, lane, nt, h)];
        }
      auto dO = [&](int k, int n) { return sm.dO[k][n]; };
      mma3_rows(acc, [&](int r, int k) { return cf.q[k][r]; }, dO, r2, n2, 0, k_tok, lane);
      mma3_rows(acc, [&](int r, int k) { return cf.W[k][r]; }, [&](int k, int n) { return sm.dV[k][n]; }, r2, n2, 0,
                k_tok, lane);
#pragma unroll
      for (int nt = 0; nt < NT2; ++nt)
#pragma unroll
        for (int h = 0; h < 4; ++h) sm.dS[acc_row(r2, lane, h)][acc_col(n2, lane, nt, h)] = acc[nt][h];
    }
  }
  __syncthreads();
  if (kTransition) {
    const int ld = bp.vpad + KMAX;
    float* E = bp.seg_state + seg_blk * KMAX * ld;
    for (int idx = tid; idx < KMAX * kCols; idx += kThreads) {
      const int d = idx / kCols, cc = idx % kCols;
      E[static_cast<int64_t>(d) * ld + col0 + cc] = sm.dS[d][cc];
    }
  } else if (first && bp.dh0 != nullptr) {
    for (int idx = tid; idx < KMAX * kCols; idx += kThreads) {
      const int d = idx / kCols, cc = idx % kCols, col = col0 + cc;
      if (d < K && col < V) bp.dh0[state_base + static_cast<int64_t>(d) * V + col] = sm.dS[d][cc];
    }
  }
}

template <int KMAX>
struct GradSmem {
  static constexpr int LDW = KMAX + 4, LDS = kCols + 8;  // fragment loads by rows: 4 and 8 mod 32 words
  Prep<KMAX> c;
  float W[kC][LDW];         // W = (I + T)^-1 (b⊙k̂⊙Γ); after the slices e-wise scratch (Kt ⊙ dKt)
  float S[KMAX][LDS];       // the state entering the chunk, a column slice; after the slices d(b⊙k̂⊙Γ) and dKt
  float dS[KMAX][LDS];      // the gradient wrt the state leaving it; after the slices the dg terms and d(q⊙Γ)
  float U[kC][kCols + 1];   // w⊙v, then U = (I + T)^-1 (w⊙v)
  float Vn[kC][kCols + 1];  // V' = U - W S
  float dO[kC][kCols + 1];
  float dV[kC][kCols + 1];  // dV', then dX = (I + T)^-T dV'
  float dP[kC][kC + 1], dT[kC][kC + 1];
};

// One block per (chunk, value head). The products over each 64-column slice run on tensor cores in 3xTF32 (mma.cuh,
// mma3_rows), the triangular solves and the elementwise chain rule on CUDA cores.
template <int KMAX>
__global__ void __launch_bounds__(kThreads, 1) chunk_grad_kernel(Gdn2BwdParams bp) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  GradSmem<KMAX>& sm = *reinterpret_cast<GradSmem<KMAX>*>(smem_raw);
  constexpr int MK = KMAX / 8;  // key channels per thread in the [kC, KMAX] tiles: d = dl + 8 m
  constexpr int NK = KMAX / 32;  // n-tiles of a warp's quarter of the key channels
  const Gdn2Params& p = bp.f;
  const int c = blockIdx.x, hv = blockIdx.y, tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int K = p.K, V = p.V, group = p.HV / p.H;
  const int64_t c0 = bp.chunk_tok0[c];
  const int L = static_cast<int>(bp.chunk_len[c]);
  const int i = tid >> 3, dl = tid & 7;  // this thread's row and channel / column residue (elementwise parts)
  // Warp tiles: rows r0 .. +15 of the chunk; for [kC, 64] products columns n16 .. +15, for [kC, KMAX] accumulators key
  // channels nk .. + KMAX/4, for [kC, kC] ones columns n8 .. +7.
  const int r0 = 16 * (warp & 1), n16 = 16 * (warp >> 1), nk = (warp >> 1) * (KMAX / 4), n8 = 8 * (warp >> 1);
  const float* Sg = bp.h + (static_cast<int64_t>(c) * p.HV + hv) * K * V;
  const float* dSg = bp.dh + (static_cast<int64_t>(c) * p.HV + hv) * K * V;

  chunk_prep(sm.c, p, c0, L, hv, bp.tp + (static_cast<int64_t>(c) * p.HV + hv) * 2 * kC * kC);
  for (int idx = tid; idx < kC * KMAX; idx += kThreads) {
    const int t = idx / KMAX, d = idx % KMAX;
    sm.W[t][d] = sm.c.bk[t][d] * __expf(sm.c.G[t][d]);
  }
  __syncthreads();
  solve_lower<GradSmem<KMAX>::LDW>(sm.c.T, sm.W, L, K);

  // Accumulated over the slices in mma layout: dKt = V' dS^T, d(q⊙Γ) = dO S^T, -dW = dV' S^T, dP = dO V'^T,
  // -dT = dX U^T.
  float aKt[NK][4], aQ[NK][4], aW[NK][4], aP[1][4], aT[1][4], dgl = 0.f;
  zero(aKt), zero(aQ), zero(aW), zero(aP), zero(aT);
  auto S_t = [&](int k, int n) { return sm.S[n][k]; };  // S^T: (column, key channel)
  for (int v0 = 0; v0 < V; v0 += kCols) {
    __syncthreads();  // the previous slice (and the solve for W) is done
    // S and dS slices by cp.async (every copy in flight at once), w⊙v and dO loaded before they are stored.
    for (int idx = tid; idx < KMAX * kCols; idx += kThreads) {
      const int d = idx / kCols, cc = idx % kCols, col = v0 + cc;
      if (d < K && col < V) {
        cp_async_4(&sm.S[d][cc], Sg + static_cast<int64_t>(d) * V + col);
        cp_async_4(&sm.dS[d][cc], dSg + static_cast<int64_t>(d) * V + col);
      } else {
        sm.S[d][cc] = 0.f;
        sm.dS[d][cc] = 0.f;
      }
    }
    cp_async_commit();
    // w and v of this thread's elements (idx = tid + u kThreads) stay in registers for dv and dw at the slice's end.
    constexpr int kIters = kPrepTilePieces;  // pieces of eight columns (load.cuh, load_value_tile)
    float wr[kIters][8], vr[kIters][8];
    {
      float o[kIters][8];
      load_w_v(p, c0, L, hv, v0, wr, vr);
      load_value_tile<kIters, kThreads, kCols>(o, bp.d_o, bp.d_o_type, c0, L, hv, p.HV, V, v0);
#pragma unroll
      for (int u = 0; u < kIters; ++u)
#pragma unroll
        for (int e = 0; e < 8; ++e) {
          const int t = piece_row<kThreads>(u), cc = piece_col<kThreads>(u) + e;
          sm.U[t][cc] = wr[u][e] * vr[u][e];
          sm.dO[t][cc] = o[u][e];
        }
    }
    cp_async_wait<0>();
    __syncthreads();
    solve_lower<kCols + 1>(sm.c.T, sm.U, L, kCols);
    __syncthreads();
    {  // V' = U - W S and dV' = Kt dS + P^T dO (Kt = k̂ e^{G_last - G} formed on the fly; P^T upper triangular).
      const int k_key = (K + 7) / 8, k_tok = (L + 7) / 8;
      float ws[2][4], dv[2][4];
      zero(ws), zero(dv);
      mma3_rows(ws, [&](int r, int k) { return sm.W[r][k]; }, [&](int k, int n) { return sm.S[k][n]; }, r0, n16, 0,
                k_key, lane);
      mma3_rows(dv, [&](int r, int k) { return sm.c.k[r][k] * __expf(sm.c.gl[k] - sm.c.G[r][k]); },
                [&](int k, int n) { return sm.dS[k][n]; }, r0, n16, 0, k_key, lane);
      mma3_rows(dv, [&](int r, int k) { return sm.c.P[k][r]; }, [&](int k, int n) { return sm.dO[k][n]; }, r0, n16, r0,
                k_tok > r0 / 8 ? k_tok - r0 / 8 : 0, lane);
#pragma unroll
      for (int nt = 0; nt < 2; ++nt)
#pragma unroll
        for (int h = 0; h < 4; ++h) {
          const int r = acc_row(r0, lane, h), cc = acc_col(n16, lane, nt, h);
          sm.Vn[r][cc] = sm.U[r][cc] - ws[nt][h];
          sm.dV[r][cc] = dv[nt][h];
        }
    }
    __syncthreads();
    // Accumulate over the slice's columns.
    {
      auto Vn = [&](int r, int k) { return sm.Vn[r][k]; };
      auto dO = [&](int r, int k) { return sm.dO[r][k]; };
      mma3_rows(aKt, Vn, [&](int k, int n) { return sm.dS[n][k]; }, r0, nk, 0, kCols / 8, lane);
      mma3_rows(aQ, dO, S_t, r0, nk, 0, kCols / 8, lane);
      mma3_rows(aW, [&](int r, int k) { return sm.dV[r][k]; }, S_t, r0, nk, 0, kCols / 8, lane);
      mma3_rows(aP, dO, [&](int k, int n) { return sm.Vn[n][k]; }, r0, n8, 0, kCols / 8, lane);
    }
    if (tid < KMAX)
      for (int cc = 0; cc < kCols; ++cc) dgl += sm.dS[tid][cc] * sm.S[tid][cc];
    __syncthreads();
    solve_lower_t<kCols + 1>(sm.c.T, sm.dV, L, kCols);  // dX = (I + T)^-T dV'
    __syncthreads();
    // -dT += dX U^T; dv = dX ⊙ w, dw = dX ⊙ v (per value head).
    mma3_rows(aT, [&](int r, int k) { return sm.dV[r][k]; }, [&](int k, int n) { return sm.U[n][k]; }, r0, n8, 0,
              kCols / 8, lane);
#pragma unroll
    for (int u = 0; u < kIters; ++u)
#pragma unroll
      for (int e = 0; e < 8; ++e) {
        const int t = piece_row<kThreads>(u), cc = piece_col<kThreads>(u) + e, col = v0 + cc;
        if (t >= L || col >= V) continue;
        const int64_t at = ((c0 + t) * p.HV + hv) * static_cast<int64_t>(V) + col;
        const float x = sm.dV[t][cc];
        bp.gv[at] = x * wr[u][e];
        if (bp.gw != nullptr) bp.gw[at] = x * vr[u][e];
      }
  }
  __syncthreads();  // every slice is done with S, dS, U, V', dO, dX
  const bool row_ok = i < L;
  const int64_t tok = c0 + i;
  float bgate[MK];  // b at this thread's row and channels, loaded here for the elementwise part below
#pragma unroll
  for (int m = 0; m < MK; ++m) {
    const int d = dl + 8 * m;
    bgate[m] = row_ok && d < K ? load_gate(p.b, tok, hv, group, p.HV, d, 0.f) : 0.f;
  }

  // The accumulators through shared memory to the elementwise layout (row i, channels dl + 8m): dW into dB, which
  // becomes d(b⊙k̂⊙Γ) = (I + T)^-T dW in the space of S, dKt and d(q⊙Γ) beside it; dP and dT in place.
  float(*dB)[KMAX + 1] = reinterpret_cast<float(*)[KMAX + 1]>(&sm.S[0][0]);
  float(*dKt_s)[KMAX + 1] = dB + kC;
  float(*dqg_s)[KMAX + 1] = reinterpret_cast<float(*)[KMAX + 1]>(&sm.dS[0][0]) + kC;
  static_assert(2 * kC * (KMAX + 1) <= KMAX * GradSmem<KMAX>::LDS, "two [kC][KMAX+1] tiles in the S region");
#pragma unroll
  for (int nt = 0; nt < NK; ++nt)
#pragma unroll
    for (int h = 0; h < 4; ++h) {
      const int r = acc_row(r0, lane, h), d = acc_col(nk, lane, nt, h);
      dB[r][d] = -aW[nt][h];
      dKt_s[r][d] = aKt[nt][h];
      dqg_s[r][d] = aQ[nt][h];
    }
#pragma unroll
  for (int h = 0; h < 4; ++h) {
    const int r = acc_row(r0, lane, h), j = acc_col(n8, lane, 0, h);
    sm.dP[r][j] = aP[0][h];
    sm.dT[r][j] = -aT[0][h];
  }
  __syncthreads();
  float dKt[MK], dqg[MK], dT[4];
#pragma unroll
  for (int m = 0; m < MK; ++m) dKt[m] = dKt_s[i][dl + 8 * m], dqg[m] = dqg_s[i][dl + 8 * m];
#pragma unroll
  for (int m = 0; m < 4; ++m) dT[m] = sm.dT[i][dl + 8 * m];
  solve_lower_t<KMAX + 1>(sm.c.T, dB, L, K);
  __syncthreads();
  for (int d = 0; d < K; ++d) {  // dT -= d(b⊙k̂⊙Γ) W^T
    const float x = dB[i][d];
#pragma unroll
    for (int m = 0; m < 4; ++m) dT[m] -= x * sm.W[dl + 8 * m][d];
  }
#pragma unroll
  for (int m = 0; m < 4; ++m) sm.dT[i][dl + 8 * m] = dT[m];
  __syncthreads();  // dP, dT in place; W is no longer needed

  // Elementwise producers, the pair scores' backward and the L2 norms, thread (row i, channels dl + 8m).
  float(*DG)[KMAX + 1] = reinterpret_cast<float(*)[KMAX + 1]>(&sm.dS[0][0]);  // dg terms of each (row, channel)
  float(*KTD)[GradSmem<KMAX>::LDW] = sm.W;  // Kt ⊙ dKt
  const float s = p.scale;
  float gq[MK], gk[MK], gb[MK];
#pragma unroll
  for (int m = 0; m < MK; ++m) {
    const int d = dl + 8 * m;
    const float G = sm.c.G[i][d], gam = __expf(G), rev = __expf(sm.c.gl[d] - G);
    const float qh = sm.c.q[i][d], kh = sm.c.k[i][d], bk = sm.c.bk[i][d], qs = s * qh;
    const float db_g = dB[i][d];
    float dk = dKt[m] * rev;
    float dg = dqg[m] * qs * gam + db_g * bk * gam;
    float dqs = dqg[m] * gam, dbk = db_g * gam;
    float dqs_pair = 0.f, dbk_pair = 0.f, dk_pair = 0.f;
    for (int j = 0; j < i; ++j) {
      const float km = sm.c.k[j][d] * __expf(G - sm.c.G[j][d]);
      dqs_pair += sm.dP[i][j] * km;
      dbk_pair += sm.dT[i][j] * km;
    }
    for (int r = i + 1; r < L; ++r) {
      const float e = __expf(sm.c.G[r][d] - G);
      dk_pair += (sm.dP[r][i] * s * sm.c.q[r][d] + sm.dT[r][i] * sm.c.bk[r][d]) * e;
    }
    dg += qs * dqs_pair + bk * dbk_pair - kh * dk_pair;
    dqs_pair += sm.dP[i][i] * kh;  // the diagonal P_ii has no decay: dq and dk only
    dk_pair += sm.dP[i][i] * qs;
    dqs += dqs_pair;
    dbk += dbk_pair;
    dk += dk_pair + dbk * bgate[m];
    gb[m] = dbk * kh;
    gq[m] = s * dqs;
    gk[m] = dk;
    DG[i][d] = dg;
    KTD[i][d] = dKt[m] * kh * rev;
  }
  if (p.l2norm) {  // dx = rstd (dy - ŷ (ŷ·dy)); the 8 threads of a row are adjacent lanes
    float dq_dot = 0.f, dk_dot = 0.f;
#pragma unroll
    for (int m = 0; m < MK; ++m) dq_dot += sm.c.q[i][dl + 8 * m] * gq[m], dk_dot += sm.c.k[i][dl + 8 * m] * gk[m];
#pragma unroll
    for (int o = 4; o > 0; o >>= 1) {
      dq_dot += __shfl_xor_sync(0xffffffffu, dq_dot, o);
      dk_dot += __shfl_xor_sync(0xffffffffu, dk_dot, o);
    }
#pragma unroll
    for (int m = 0; m < MK; ++m) {
      gq[m] = sm.c.rq[i] * (gq[m] - sm.c.q[i][dl + 8 * m] * dq_dot);
      gk[m] = sm.c.rk[i] * (gk[m] - sm.c.k[i][dl + 8 * m] * dk_dot);
    }
  }
  if (row_ok) {
#pragma unroll
    for (int m = 0; m < MK; ++m) {
      const int d = dl + 8 * m;
      if (d >= K) continue;
      const int64_t at = (tok * p.HV + hv) * static_cast<int64_t>(K) + d;
      bp.gq[at] = gq[m];
      bp.gk[at] = gk[m];
      if (bp.gb != nullptr) bp.gb[at] = gb[m];
    }
  }
  __syncthreads();
  // g enters through G = cumsum g and G_last: dg_t = dG_last + Σ_{r>=t} dG_r, plus the exclusive prefix
  // Σ_{r<t} Kt_r ⊙ dKt_r (the Kt = k̂ e^{G_last - G} terms, entered without cancellation).
  if (tid < K) {
    const int d = tid;
    float running = dgl * __expf(sm.c.gl[d]);
    for (int t = L - 1; t >= 0; --t) {
      running += DG[t][d];
      DG[t][d] = running;
    }
    float prefix = 0.f;
    for (int t = 0; t < L && bp.gg != nullptr; ++t) {
      bp.gg[((c0 + t) * p.HV + hv) * static_cast<int64_t>(K) + d] = DG[t][d] + prefix;
      prefix += KTD[t][d];
    }
  }
}

__global__ void reduce_heads_kernel(const float* buf, int64_t tokens, int HV, int dim, int heads, bool channel,
                                    float* out) {
  const int per = HV / heads, width = channel ? dim : 1;
  const int64_t total = tokens * heads * width;
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < total;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t t = e / (heads * width);
    const int h = static_cast<int>((e / width) % heads), d = static_cast<int>(e % width);
    float acc = 0.f;
    for (int j = 0; j < per; ++j) {
      const float* row = buf + (t * HV + h * per + j) * static_cast<int64_t>(dim);
      if (channel) {
        acc += row[d];
      } else {
        for (int x = 0; x < dim; ++x) acc += row[x];
      }
    }
    out[e] = acc;
  }
}

template <int KMAX>
void launch_states(const Gdn2BwdParams& bp) {
  const Gdn2Params& p = bp.f;
  const size_t smem = sizeof(DstateSmem<KMAX>);
  if (bp.chunks > 0)
    launch_with_smem(chunk_coef_kernel<KMAX>, dim3(bp.chunks, p.HV), kThreads, sizeof(CoefSmem<KMAX>), p.stream, bp);
  if (bp.h64 != nullptr && bp.chunks64 > 0)
    launch_with_smem(chunk_substate_kernel<KMAX>, dim3(bp.vpad / kCols, p.HV, bp.chunks64), kThreads,
                     sizeof(SubstateSmem<KMAX>), p.stream, bp);
  if (bp.seg_state != nullptr) {
    launch_with_smem(chunk_dstate_kernel<KMAX, true>, dim3((bp.vpad + KMAX) / kCols, p.HV, bp.segs), kThreads, smem,
                     p.stream, bp);
    SegmentScan scan;  // in reverse: the gradient entering each segment from its right, from dht
    scan.seq_seg0 = bp.seq_seg0, scan.seg_state = bp.seg_state, scan.out = bp.seg_dS, scan.init = bp.dht;
    scan.N = p.N, scan.HV = p.HV, scan.K = p.K, scan.V = p.V, scan.vpad = bp.vpad;
    launch_segment_scan<KMAX, true>(scan, p.stream);
  }
  launch_with_smem(chunk_dstate_kernel<KMAX, false>, dim3(bp.vpad / kCols, p.HV, bp.segs), kThreads, smem, p.stream,
                   bp);
}

}  // namespace

void launch_chunk_bwd_states(const Gdn2BwdParams& bp) {
  if (bp.f.N == 0) return;
  with_kmax(kmax_for(bp.f.K), [&](auto kmax) { launch_states<decltype(kmax)::value>(bp); });
}

void launch_chunk_bwd_grads(const Gdn2BwdParams& bp) {
  if (bp.f.N == 0 || bp.chunks == 0) return;
  with_kmax(kmax_for(bp.f.K), [&](auto kmax) {
    constexpr int KMAX = decltype(kmax)::value;
    launch_with_smem(chunk_grad_kernel<KMAX>, dim3(bp.chunks, bp.f.HV), kThreads, sizeof(GradSmem<KMAX>), bp.f.stream,
                     bp);
  });
}

void launch_reduce_heads(const float* buf, int64_t tokens, int HV, int dim, int heads, bool channel, float* out,
                         cudaStream_t stream) {
  const int64_t total = tokens * heads * (channel ? dim : 1);
  if (total == 0) return;
  const int blocks = static_cast<int>(std::min<int64_t>((total + 255) / 256, 4096));
  reduce_heads_kernel<<<blocks, 256, 0, stream>>>(buf, tokens, HV, dim, heads, channel, out);
  GDN2_CUDA_CHECK(cudaGetLastError());
}

}  // namespace gdn2::cuda
