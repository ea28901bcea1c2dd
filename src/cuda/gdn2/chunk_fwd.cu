// Chunkwise (WY) GDN-2 forward on CUDA cores, fp32 throughout: one block per (sequence, value head, 64-column
// slice of V) walks the sequence's chunks of 32 tokens with its state slice in shared memory. Per chunk:
//   T_ij = Σ_d (b⊙k)_id k_jd e^{G_id - G_jd} (j < i),  P_ij = Σ_d (s q)_id k_jd e^{G_id - G_jd} (j <= i)
//   W = (I+T)^-1 (b⊙k⊙Γ),  U = (I+T)^-1 (w⊙v),  V' = U - W S,  O = (q⊙Γ) S + P V',
//   S <- Diag(Γ_last) S + (k⊙Γ_last/Γ)^T V'
// Every exponent is a difference G_i - G_j <= 0 (j <= i) or G_last - G_i <= 0: nothing overflows.
#include "cuda/common.cuh"
#include "cuda/gdn2/chunk_prep.cuh"
#include "cuda/gdn2/kernels.h"
#include "cuda/gdn2/load.cuh"

namespace gdn2::cuda {

namespace {

constexpr int kChunk = kPrepChunk, kCols = kPrepCols, kThreads = kPrepThreads;

template <int KMAX>
struct Smem {
  Prep<KMAX> c;            // q̂ then s q̂ ⊙ Γ;  k̂;  G then k̂ ⊙ e^{G_last - G};  b ⊙ k̂ then b ⊙ k̂ ⊙ Γ, then W;  T, P
  float x[kChunk][kCols];  // w ⊙ v, then U, then V'
  float S[KMAX][kCols];
  float gamma_last[KMAX];  // γ = e^{G_last}
};

// One chunk of L tokens from token c0 on the block's state slice sm.S (columns col0 ..): o rows when p.o is set, and
// sm.S becomes the state after the chunk. Callers separate it from earlier uses of the buffers with a barrier.
template <int KMAX>
__device__ void exact_chunk_step(Smem<KMAX>& sm, const Gdn2Params& p, int64_t c0, int L, int hv, int col0) {
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int K = p.K, V = p.V;
  // 1. The chunk's q̂, k̂, G = cumsum g, b ⊙ k̂, T and P (chunk_prep.cuh); w ⊙ v on this block's columns.
  chunk_prep(sm.c, p, c0, L, hv);
  {  // all loads first, then the stores (a generic load cannot pass an earlier shared store)
    float wr[kPrepTilePieces][8], vr[kPrepTilePieces][8];
    load_w_v(p, c0, L, hv, col0, wr, vr);
#pragma unroll
    for (int u = 0; u < kPrepTilePieces; ++u) {
      const int t = piece_row<kThreads>(u);
#pragma unroll
      for (int e = 0; e < 8; ++e)
        if (t < L) sm.x[t][piece_col<kThreads>(u) + e] = wr[u][e] * vr[u][e];
    }
  }
  // 2. Γ-scaled rows: s q̂ ⊙ Γ, b ⊙ k̂ ⊙ Γ, k̂ ⊙ e^{G_last - G} (over G), and γ = e^{G_last}.
  chunk_gamma_scale(sm.c, p.scale, L, K);
  for (int d = tid; d < K; d += kThreads) sm.gamma_last[d] = __expf(sm.c.gl[d]);
  __syncthreads();
  // 3. Forward substitution, one column per thread: W = (I+T)^-1 (b⊙k⊙Γ) and U = (I+T)^-1 (w⊙v).
  for (int c = tid; c < K + kCols; c += kThreads) {
    if (c < K) {
      for (int i = 1; i < L; ++i) {
        float r = sm.c.bk[i][c];
        for (int j = 0; j < i; ++j) r -= sm.c.T[i][j] * sm.c.bk[j][c];
        sm.c.bk[i][c] = r;
      }
    } else {
      const int cc = c - K;
      for (int i = 1; i < L; ++i) {
        float r = sm.x[i][cc];
        for (int j = 0; j < i; ++j) r -= sm.c.T[i][j] * sm.x[j][cc];
        sm.x[i][cc] = r;
      }
    }
  }
  __syncthreads();
  // 4. V' = U - W S (chunk_prep.cuh).
  subtract_w_state(sm.c.bk, sm.S, K, L, sm.x);
  __syncthreads();
  // 5. O = (q⊙Γ) S + P V', written to global memory.
  {
    float acc[4][2] = {};
    rows_times_state(sm.c.q, sm.S, K, acc);
    for (int j = 0; j < L; ++j) {
      const float x0 = sm.x[j][lane], x1 = sm.x[j][lane + 32];
#pragma unroll
      for (int a = 0; a < 4; ++a) {
        const float pv = sm.c.P[warp + 8 * a][j];
        acc[a][0] += pv * x0;
        acc[a][1] += pv * x1;
      }
    }
#pragma unroll
    for (int a = 0; a < 4; ++a) {
      const int i = warp + 8 * a;
      if (i >= L) continue;
      const int64_t row = ((c0 + i) * p.HV + hv) * V;
      if (p.o == nullptr) continue;  // states only (the backward's recompute)
      if (col0 + lane < V) store_elem(p.o, p.o_type, row + col0 + lane, acc[a][0]);
      if (col0 + lane + 32 < V) store_elem(p.o, p.o_type, row + col0 + lane + 32, acc[a][1]);
    }
  }
  __syncthreads();  // step 5 is done reading S
  // 6. S <- Diag(γ) S + Kt^T V' (chunk_prep.cuh).
  advance_state(sm.c.G, sm.x, sm.gamma_last, K, L, sm.S);
}

template <int KMAX>
__global__ void __launch_bounds__(kThreads, 1) chunk_fwd_kernel(Gdn2Params p) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  Smem<KMAX>& sm = *reinterpret_cast<Smem<KMAX>*>(smem_raw);
  const int col0 = blockIdx.x * kCols, hv = blockIdx.y, n = blockIdx.z, tid = threadIdx.x;
  const int K = p.K, V = p.V;
  const int64_t state_base = ((int64_t)n * p.HV + hv) * K * V;

  for (int idx = tid; idx < KMAX * kCols; idx += kThreads) {
    const int d = idx / kCols, c = idx % kCols, col = col0 + c;
    sm.S[d][c] = (p.h0 != nullptr && d < K && col < V) ? load_elem(p.h0, p.state_type, state_base + (int64_t)d * V + col) : 0.f;
  }
  int64_t seq0, seq1;
  sequence_range(p, n, seq0, seq1);
  for (int64_t c0 = seq0; c0 < seq1; c0 += kChunk) {
    const int L = static_cast<int>(seq1 - c0 < kChunk ? seq1 - c0 : kChunk);
    __syncthreads();  // the previous chunk is done with every buffer
    if (p.h_chunks != nullptr && (c0 - seq0) % p.h_chunk_tokens == 0) {  // the state entering a stored chunk
      float* h = p.h_chunks + ((p.chunk.seq_chunk0[n] + (c0 - seq0) / p.h_chunk_tokens) * p.HV + hv) * K * V;
      for (int idx = tid; idx < K * kCols; idx += kThreads) {
        const int d = idx / kCols, c = idx % kCols;
        if (col0 + c < V) h[static_cast<int64_t>(d) * V + col0 + c] = sm.S[d][c];
      }
    }
    exact_chunk_step(sm, p, c0, L, hv, col0);
  }
  __syncthreads();
  if (p.ht != nullptr) {
    for (int idx = tid; idx < K * kCols; idx += kThreads) {
      const int d = idx / kCols, c = idx % kCols, col = col0 + c;
      if (col < V) store_elem(p.ht, p.state_type, state_base + (int64_t)d * V + col, sm.S[d][c]);
    }
  }
}

}  // namespace

void launch_chunk_fwd(const Gdn2Params& p) {
  if (p.N == 0) return;
  if (p.chunk.W != nullptr) {
    launch_chunk_intra(p);
    launch_chunk_state(p);
    return;
  }
  launch_chunk_fwd_exact(p);
}

void launch_chunk_fwd_exact(const Gdn2Params& p) {
  if (p.N == 0) return;
  with_kmax(kmax_for(p.K), [&](auto kmax) {
    constexpr int KMAX = decltype(kmax)::value;
    launch_with_smem(chunk_fwd_kernel<KMAX>, dim3((p.V + kCols - 1) / kCols, p.HV, p.N), kThreads, sizeof(Smem<KMAX>),
                     p.stream, p);
  });
}

}  // namespace gdn2::cuda
