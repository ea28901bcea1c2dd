// The per-chunk preparation shared by the fp32 CUDA-core chunk kernels (chunk_fwd.cu, chunk_bwd.cu), and the
// triangular solves with I + T. Blocks of kPrepThreads threads; chunks of kPrepChunk tokens.
#pragma once

#include "cuda/gdn2/load.cuh"

namespace gdn2::cuda {

constexpr int kPrepChunk = 32, kPrepThreads = 256;

// The rows a chunk's preparation starts from, for chunks of ROWS tokens and blocks of THREADS threads: q, k, g (the
// decay, formed from f by the in-kernel gate when asked) and b of rows [0, L) from token c0 for value head hv, key
// channels d_lo .. d_lo + KMAX, into [ROWS][LD] tiles (zeros past L and K); after a barrier, 1/|q| and 1/|k| of every
// row (1 without the in-op norm; with kSums, the rows' sums of squares over these channels instead, for a caller that
// splits the channels) and G = cumsum g in place with gl = G_last (rows past L repeat it). Ends without a barrier.
template <int ROWS, int KMAX, int THREADS, int LD, bool kSums = false>
__device__ void chunk_rows(const Gdn2Params& p, int64_t c0, int L, int hv, float (*q)[LD], float (*k)[LD],
                           float (*G)[LD], float (*b)[LD], float* rq, float* rk, float* gl, int d_lo = 0) {
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int K = p.K, group = p.HV / p.H, hq = hv / group;
  const int hg = input_head(p.g, hv, p.HV, group), hb = input_head(p.b, hv, p.HV, group);
  // Pieces of eight channels (16-byte loads where the layout allows), every load issued before the shared-memory stores:
  // a load through a generic pointer cannot be moved above an earlier shared store.
  constexpr int kPieces = ROWS * KMAX / 8, kIters = (kPieces + THREADS - 1) / THREADS;
  float qv[kIters][8], kv[kIters][8], gv[kIters][8], bv[kIters][8];
#pragma unroll
  for (int u = 0; u < kIters; ++u) {
    const int idx = tid + u * THREADS, t = idx / (KMAX / 8), d0 = d_lo + 8 * (idx % (KMAX / 8));
    const bool ok = idx < kPieces && t < L;
    const int64_t tok = c0 + t;
    load_input(qv[u], p.q, tok, hq, d0, K, ok, p.vec8, 0.f);
    load_input(kv[u], p.k, tok, hq, d0, K, ok, p.vec8, 0.f);
    load_input(gv[u], p.g, tok, hg, d0, K, ok, p.vec8, 0.f);
    load_input(bv[u], p.b, tok, hb, d0, K, ok, p.vec8, 0.f);
  }
#pragma unroll
  for (int u = 0; u < kIters; ++u) {
    const int idx = tid + u * THREADS, t = idx / (KMAX / 8), d0 = d_lo + 8 * (idx % (KMAX / 8));
    if (idx >= kPieces) break;
    if (p.a_log != nullptr && t < L) {  // the in-kernel decay gate (load.cuh, load_decay)
      const float dt0 = p.dt_bias == nullptr || p.g.form == Gate::channel ? 0.f : p.dt_bias[hg];
#pragma unroll
      for (int e = 0; e < 8; ++e)
        if (d0 + e < K) {
          const float dt = p.dt_bias != nullptr && p.g.form == Gate::channel ? p.dt_bias[hg * K + d0 + e] : dt0;
          gv[u][e] = decay_from_f(gv[u][e], p.a_log[hg], dt);
        }
    }
    const int x0 = d0 - d_lo;
#pragma unroll
    for (int e = 0; e < 8; ++e)
      q[t][x0 + e] = qv[u][e], k[t][x0 + e] = kv[u][e], G[t][x0 + e] = gv[u][e], b[t][x0 + e] = bv[u][e];
  }
  __syncthreads();
  for (int t = warp; t < ROWS; t += THREADS / 32) {
    float qs = 0.f, ks = 0.f;
    for (int d = lane; d < KMAX; d += 32) qs += q[t][d] * q[t][d], ks += k[t][d] * k[t][d];
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
      qs += __shfl_xor_sync(0xffffffffu, qs, o);
      ks += __shfl_xor_sync(0xffffffffu, ks, o);
    }
    if (lane == 0) {
      rq[t] = kSums ? qs : p.l2norm ? rsqrtf(qs + 1e-6f) : 1.f;
      rk[t] = kSums ? ks : p.l2norm ? rsqrtf(ks + 1e-6f) : 1.f;
    }
  }
  for (int d = tid; d < KMAX; d += THREADS) {
    float run = 0.f;
    for (int t = 0; t < ROWS; ++t) {
      run += G[t][d];
      G[t][d] = run;
    }
    gl[d] = run;
  }
}

// What the fp32 chunk kernels (forward and backward) form for a chunk of up to 32 tokens of value head hv starting
// at token c0: the normalised q̂, k̂, G = cumsum g, b⊙k̂, T and P (P with the scale). Rows past L are zeros.
template <int KMAX>
struct Prep {
  static constexpr int KP = KMAX + 1;
  float q[kPrepChunk][KP];   // q̂
  float k[kPrepChunk][KP];   // k̂
  float G[kPrepChunk][KP];   // inclusive cumsum of g (rows past the chunk repeat G_last)
  float bk[kPrepChunk][KP];  // b ⊙ k̂
  float T[kPrepChunk][kPrepChunk + 1], P[kPrepChunk][kPrepChunk + 1];
  float gl[KMAX];    // G_last
  float rq[kPrepChunk], rk[kPrepChunk];  // 1/|q|, 1/|k| (1 without the in-op norm)
};

// With tp set (T then P, [kPrepChunk][kPrepChunk] each, as an earlier chunk_prep of the same chunk wrote them), T and P
// are read instead of formed.
template <int KMAX>
__device__ void chunk_prep(Prep<KMAX>& sm, const Gdn2Params& p, int64_t c0, int L, int hv, const float* tp = nullptr) {
  const int tid = threadIdx.x, K = p.K;
  constexpr int kPairs = kPrepChunk * kPrepChunk, kPairIters = kPairs / kPrepThreads;
  float t_in[kPairIters], p_in[kPairIters];  // stored T and P: loads issued now, stored at the end
  if (tp != nullptr)
#pragma unroll
    for (int u = 0; u < kPairIters; ++u) {
      t_in[u] = tp[tid + u * kPrepThreads];
      p_in[u] = tp[kPairs + tid + u * kPrepThreads];
    }
  chunk_rows<kPrepChunk, KMAX, kPrepThreads, Prep<KMAX>::KP>(p, c0, L, hv, sm.q, sm.k, sm.G, sm.bk, sm.rq, sm.rk,
                                                          sm.gl);  // raw b in bk, made b⊙k̂ below
  __syncthreads();
  for (int idx = tid; idx < kPrepChunk * KMAX; idx += kPrepThreads) {
    const int t = idx / KMAX, d = idx % KMAX;
    sm.q[t][d] *= sm.rq[t];
    sm.k[t][d] *= sm.rk[t];
    sm.bk[t][d] *= sm.k[t][d];
  }
  if (tp != nullptr) {  // T and P, loaded at the start
#pragma unroll
    for (int u = 0; u < kPairIters; ++u) {
      const int pair = tid + u * kPrepThreads, i = pair / kPrepChunk, j = pair % kPrepChunk;
      sm.T[i][j] = t_in[u];
      sm.P[i][j] = p_in[u];
    }
    __syncthreads();
    return;
  }
  __syncthreads();
  for (int pair = tid; pair < kPrepChunk * kPrepChunk; pair += kPrepThreads) {
    const int i = pair / kPrepChunk, j = pair % kPrepChunk;
    float tv = 0.f, pv = 0.f;
    if (i < L && j <= i) {
      for (int d = 0; d < K; ++d) {
        const float kd = sm.k[j][d] * __expf(sm.G[i][d] - sm.G[j][d]);
        tv += sm.bk[i][d] * kd;
        pv += sm.q[i][d] * kd;
      }
    }
    sm.T[i][j] = j < i ? tv : 0.f;
    sm.P[i][j] = p.scale * pv;
  }
  __syncthreads();
}

// The WY form's Γ-scaled rows in place, rows < L and channels < K: q̂ -> s q̂ ⊙ Γ, b⊙k̂ -> b⊙k̂⊙Γ and G -> Kt = k̂ ⊙
// e^{G_last - G} (Γ = e^G). Callers separate it from chunk_prep's writes and from their reads with barriers.
template <int KMAX>
__device__ void chunk_gamma_scale(Prep<KMAX>& sm, float scale, int L, int K) {
  for (int idx = threadIdx.x; idx < L * K; idx += kPrepThreads) {
    const int t = idx / K, d = idx % K;
    const float G = sm.G[t][d], gam = __expf(G);
    sm.q[t][d] *= scale * gam;
    sm.bk[t][d] *= gam;
    sm.G[t][d] = sm.k[t][d] * __expf(sm.gl[d] - G);
  }
}

// R <- (I + T)^-1 R on columns [0, cols) of R [kPrepChunk][ld] (forward substitution, one column a thread).
template <int LD>
__device__ void solve_lower(const float (*T)[kPrepChunk + 1], float (*R)[LD], int L, int cols) {
  for (int c = threadIdx.x; c < cols; c += kPrepThreads)
    for (int i = 1; i < L; ++i) {
      float r = R[i][c];
      for (int j = 0; j < i; ++j) r -= T[i][j] * R[j][c];
      R[i][c] = r;
    }
}

// R <- (I + T)^-T R (backward substitution with the transpose).
template <int LD>
__device__ void solve_lower_t(const float (*T)[kPrepChunk + 1], float (*R)[LD], int L, int cols) {
  for (int c = threadIdx.x; c < cols; c += kPrepThreads)
    for (int i = L - 2; i >= 0; --i) {
      float r = R[i][c];
      for (int j = i + 1; j < L; ++j) r -= T[j][i] * R[j][c];
      R[i][c] = r;
    }
}

// The state slice steps of an exact chunk step on a [KMAX][kPrepCols] slice of the state, shared by the fp32 forward
// (chunk_fwd.cu) and the backward's sub-states (chunk_bwd.cu). Thread tile: rows warp + 8a (a < 4) of a [chunk, K]
// tile, columns lane and lane + 32 of the slice.
constexpr int kPrepCols = 64;

// w and v at this thread's pieces of eight columns of a [kPrepChunk][kPrepCols] tile (load.cuh, load_value_tile's
// pieces; token c0 + piece_row, columns col0 + piece_col ..), zeros past L and V. Every load is issued before any is
// used.
constexpr int kPrepTilePieces = kPrepChunk * kPrepCols / 8 / kPrepThreads;
__device__ __forceinline__ void load_w_v(const Gdn2Params& p, int64_t c0, int L, int hv, int col0,
                                         float (&w)[kPrepTilePieces][8], float (&v)[kPrepTilePieces][8]) {
  const int hw = input_head(p.w, hv, p.HV, p.HV / p.H);
#pragma unroll
  for (int u = 0; u < kPrepTilePieces; ++u) {
    const int t = piece_row<kPrepThreads, kPrepCols>(u), col = col0 + piece_col<kPrepThreads, kPrepCols>(u);
    load_input(w[u], p.w, c0 + t, hw, col, p.V, t < L, p.vec8, 1.f);
    load_input(v[u], p.v, c0 + t, hv, col, p.V, t < L, p.vec8, 0.f);
  }
}

// acc[a][c] += Σ_{d<K} A[warp + 8a][d] · S[d][lane + 32c]: rows of a [chunk, K] tile times the state slice.
template <int LDA>
__device__ __forceinline__ void rows_times_state(const float (*A)[LDA], const float (*S)[kPrepCols], int K,
                                                 float (&acc)[4][2]) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  for (int d = 0; d < K; ++d) {
    const float s0 = S[d][lane], s1 = S[d][lane + 32];
#pragma unroll
    for (int a = 0; a < 4; ++a) {
      const float x = A[warp + 8 * a][d];
      acc[a][0] += x * s0;
      acc[a][1] += x * s1;
    }
  }
}

// X <- X - W S on rows < L: V' = U - W S.
template <int LDA>
__device__ __forceinline__ void subtract_w_state(const float (*W)[LDA], const float (*S)[kPrepCols], int K, int L,
                                                 float (*X)[kPrepCols]) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  float acc[4][2] = {};
  rows_times_state(W, S, K, acc);
#pragma unroll
  for (int a = 0; a < 4; ++a) {
    const int i = warp + 8 * a;
    if (i < L) {
      X[i][lane] -= acc[a][0];
      X[i][lane + 32] -= acc[a][1];
    }
  }
}

// S <- Diag(γ) S + Kt^T V' over V' rows < L (thread tile: rows d = warp + 8a of the state).
template <int LDA>
__device__ __forceinline__ void advance_state(const float (*Kt)[LDA], const float (*X)[kPrepCols], const float* gamma,
                                              int K, int L, float (*S)[kPrepCols]) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  for (int d0 = 0; d0 < K; d0 += 8 * 4) {
    float acc[4][2] = {};
    for (int i = 0; i < L; ++i) {
      const float x0 = X[i][lane], x1 = X[i][lane + 32];
#pragma unroll
      for (int a = 0; a < 4; ++a) {
        const int d = d0 + warp + 8 * a;
        const float kt = d < K ? Kt[i][d] : 0.f;
        acc[a][0] += kt * x0;
        acc[a][1] += kt * x1;
      }
    }
#pragma unroll
    for (int a = 0; a < 4; ++a) {
      const int d = d0 + warp + 8 * a;
      if (d < K) {
        S[d][lane] = gamma[d] * S[d][lane] + acc[a][0];
        S[d][lane + 32] = gamma[d] * S[d][lane + 32] + acc[a][1];
      }
    }
  }
}

}  // namespace gdn2::cuda
