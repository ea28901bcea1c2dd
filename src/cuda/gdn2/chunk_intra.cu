// Tensor-core chunk path, part 1 (token-parallel): one block per (chunk of 64 tokens, value head) forms everything a
// chunk needs that does not depend on the state, and writes it to the workspace (params.h, ChunkWork):
//   G = cumsum g;  T_ij = Σ_d (b⊙k)_id k_jd e^{G_id - G_jd} (j < i);  P_ij = Σ_d (s q)_id k_jd e^{G_id - G_jd} (j <= i)
//   A = (I + T)^-1;  W = A (b⊙k⊙Γ);  U = A (w⊙v);  qg = s q⊙Γ;  kgT = (k⊙Γ_last/Γ)^T;  gamma = Γ_last.
// Scores run on tensor cores with one anchor per 16-row block: row i of block r0 carries e^{G_i - G_r0} <= 1 and
// column j carries e^{G_r0 - G_j}, which is <= 1 below the block and at most e^{span} inside it. When the span of
// a diagonal block exceeds kAnchorSpan (very negative gates), that block is recomputed pair by pair instead.
// The inverse is blocked: the four 16x16 diagonal inverses by substitution, then block rows in order.
#include "cuda/common.cuh"
#include "cuda/gdn2/kernels.h"
#include "cuda/gdn2/load.cuh"
#include "cuda/gdn2/mma.cuh"

namespace gdn2::cuda {

namespace {

constexpr int kC = 64, kThreads = 256, kWarps = kThreads / 32, kRows = kC / kWarps, kLdC = kC + 8;
constexpr float kAnchorSpan = 60.f;  // e^60 and e^-60 are far inside fp32 and bf16 range

template <int KMAX>
struct IntraSmem {
  static constexpr int LDK = KMAX + 8, LDG = KMAX + 4;
  float G[kC][LDG];     // inclusive cumsum of g over the chunk
  bf16 q[kC][LDK];      // s·q/|q|; with k, later the space of the transposed right-hand sides
  bf16 k[kC][LDK];      // k/|k|
  bf16 bk[kC][LDK];     // b ⊙ k/|k|
  float T[kC][kC + 1];  // per-warp cumsum totals, then T, then A = (I + T)^-1 in place
  bf16 A[kC][kLdC];     // A in bf16; during the solve the block-row products R
};

__device__ __forceinline__ float bf(bf16 x) { return __bfloat162float(x); }

// Rows of x (channels lane + 32m) scaled by scale / |row| (or scale alone), stored as bf16 rows of dst.
template <int KMAX>
__device__ __forceinline__ void normalise_rows(float (&x)[KMAX / 32][kRows], bool l2norm, float scale, int lane,
                                               bf16* dst) {
  constexpr int DPL = KMAX / 32, LDK = KMAX + 8;
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    float ss = 0.f;
#pragma unroll
    for (int m = 0; m < DPL; ++m) ss += x[m][r] * x[m][r];
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
    const float f = scale * (l2norm ? rsqrtf(ss + 1e-6f) : 1.f);
#pragma unroll
    for (int m = 0; m < DPL; ++m) dst[r * LDK + lane + 32 * m] = __float2bfloat16_rn(x[m][r] * f);
  }
}

template <int KMAX>
__global__ void __launch_bounds__(kThreads, 2) chunk_intra_kernel(Gdn2Params p) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  IntraSmem<KMAX>& sm = *reinterpret_cast<IntraSmem<KMAX>*>(smem_raw);
  constexpr int DPL = KMAX / 32;
  const ChunkWork& cw = p.chunk;
  const int c = blockIdx.x, hv = blockIdx.y;
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, t4 = lane & 3;
  const int K = p.K, V = p.V, group = p.HV / p.H, hq = hv / group;
  const int64_t tok0 = cw.chunk_tok0[c];
  const int L = static_cast<int>(cw.chunk_len[c]);
  const int64_t blk = static_cast<int64_t>(c) * p.HV + hv;

  // 1. Rows kRows·warp .. +kRows-1, one input at a time with all rows in flight: q and k normalised, b ⊙ k, and
  //    the warp's running cumsum of g.
  const int row0 = kRows * warp, rows = L - row0;
  float x[DPL][kRows], run[DPL];
#pragma unroll
  for (int m = 0; m < DPL; ++m) gather(x[m], p.q, tok0 + row0, hq, 0, 1, lane + 32 * m, rows, K, 0.f);
  normalise_rows<KMAX>(x, p.l2norm, p.scale, lane, &sm.q[row0][0]);
#pragma unroll
  for (int m = 0; m < DPL; ++m) gather(x[m], p.k, tok0 + row0, hq, 0, 1, lane + 32 * m, rows, K, 0.f);
  normalise_rows<KMAX>(x, p.l2norm, 1.f, lane, &sm.k[row0][0]);
  const int hb = input_head(p.b, hv, p.HV, group), hg = input_head(p.g, hv, p.HV, group);
#pragma unroll
  for (int m = 0; m < DPL; ++m) gather(x[m], p.b, tok0 + row0, hb, 0, 1, lane + 32 * m, rows, K, 0.f);
#pragma unroll
  for (int m = 0; m < DPL; ++m) {
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
      const int d = lane + 32 * m;
      sm.bk[row0 + r][d] = __float2bfloat16_rn(x[m][r] * bf(sm.k[row0 + r][d]));
    }
  }
#pragma unroll
  for (int m = 0; m < DPL; ++m) gather(x[m], p.g, tok0 + row0, hg, 0, 1, lane + 32 * m, rows, K, 0.f);
#pragma unroll
  for (int m = 0; m < DPL; ++m) {
    const int d = lane + 32 * m;
    float dt = 0.f, a_log = 0.f;
    if (p.a_log != nullptr) {
      a_log = p.a_log[hg];
      if (p.dt_bias != nullptr) dt = p.dt_bias[p.g.form == Gate::channel ? hg * K + (d < K ? d : 0) : hg];
    }
    run[m] = 0.f;
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
      if (p.a_log != nullptr && r < rows && d < K) x[m][r] = decay_from_f(x[m][r], a_log, dt);
      run[m] += x[m][r];
      sm.G[row0 + r][d] = run[m];
    }
  }
  float* Gtot = &sm.T[0][0];  // [kWarps][KMAX]
#pragma unroll
  for (int m = 0; m < DPL; ++m) Gtot[warp * KMAX + lane + 32 * m] = run[m];
  __syncthreads();
  if (warp > 0) {
#pragma unroll
    for (int m = 0; m < DPL; ++m) {
      const int d = lane + 32 * m;
      float pre = 0.f;
      for (int w = 0; w < warp; ++w) pre += Gtot[w * KMAX + d];
#pragma unroll
      for (int r = 0; r < kRows; ++r) sm.G[row0 + r][d] += pre;
    }
  }
  __syncthreads();
  // Two warps share each 16-row block below: rb is the block, nh which half of the columns the warp computes.
  const int rb = warp & 3, nh = warp >> 2;

  // 2. Scores of row block rb against column blocks 0..rb on tensor cores (this warp: the 8 columns nh of each
  //    block); T to shared memory, P to the workspace.
  {
    const int r0 = 16 * rb;
    const float* Gr = sm.G[r0];
    float span = 0.f;
#pragma unroll
    for (int m = 0; m < DPL; ++m) span = fmaxf(span, fabsf(Gr[lane + 32 * m] - sm.G[r0 + 15][lane + 32 * m]));
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) span = fmaxf(span, __shfl_xor_sync(0xffffffffu, span, o));
    const bool anchored = span < kAnchorSpan;
    uint32_t qa[KMAX / 16][4], ka[KMAX / 16][4];
#pragma unroll
    for (int kk = 0; kk < KMAX / 16; ++kk) {
#pragma unroll
      for (int h = 0; h < 4; ++h) {
        const int i = r0 + g + (h & 1) * 8, d = 16 * kk + 2 * t4 + (h >> 1) * 8;
        const float e0 = __expf(sm.G[i][d] - Gr[d]), e1 = __expf(sm.G[i][d + 1] - Gr[d + 1]);
        qa[kk][h] = pack_bf16(bf(sm.q[i][d]) * e0, bf(sm.q[i][d + 1]) * e1);
        ka[kk][h] = pack_bf16(bf(sm.bk[i][d]) * e0, bf(sm.bk[i][d + 1]) * e1);
      }
    }
    bf16* Pw = static_cast<bf16*>(cw.P) + blk * kC * kC;
    for (int bj = 0; bj < 4; ++bj) {
      {
        const int j0 = 16 * bj + 8 * nh;
        float tacc[4] = {0.f, 0.f, 0.f, 0.f}, pacc[4] = {0.f, 0.f, 0.f, 0.f};
        if (bj <= rb) {
          const int j = j0 + g;
#pragma unroll
          for (int kk = 0; kk < KMAX / 16; ++kk) {
            const int d = 16 * kk + 2 * t4;
            uint32_t b[2];
            b[0] = pack_bf16(bf(sm.k[j][d]) * __expf(Gr[d] - sm.G[j][d]),
                             bf(sm.k[j][d + 1]) * __expf(Gr[d + 1] - sm.G[j][d + 1]));
            b[1] = pack_bf16(bf(sm.k[j][d + 8]) * __expf(Gr[d + 8] - sm.G[j][d + 8]),
                             bf(sm.k[j][d + 9]) * __expf(Gr[d + 9] - sm.G[j][d + 9]));
            mma_bf16_16816(tacc, ka[kk], b);
            mma_bf16_16816(pacc, qa[kk], b);
          }
          if (bj == rb && !anchored) {  // the diagonal block, pair by pair with exact exponents
#pragma unroll
            for (int h = 0; h < 4; ++h) {
              const int i = r0 + g + (h >> 1) * 8, jj = j0 + 2 * t4 + (h & 1);
              float tv = 0.f, pv = 0.f;
              if (jj <= i) {
                for (int d = 0; d < KMAX; ++d) {
                  const float kd = bf(sm.k[jj][d]) * __expf(sm.G[i][d] - sm.G[jj][d]);
                  tv += bf(sm.bk[i][d]) * kd;
                  pv += bf(sm.q[i][d]) * kd;
                }
              }
              tacc[h] = tv, pacc[h] = pv;
            }
          }
        }
        float pv[4];
#pragma unroll
        for (int h = 0; h < 4; ++h) {
          const int i = r0 + g + (h >> 1) * 8, jj = j0 + 2 * t4 + (h & 1);
          sm.T[i][jj] = jj < i ? tacc[h] : 0.f;
          pv[h] = jj <= i ? pacc[h] : 0.f;
        }
        *reinterpret_cast<uint32_t*>(Pw + (r0 + g) * kC + j0 + 2 * t4) = pack_bf16(pv[0], pv[1]);
        *reinterpret_cast<uint32_t*>(Pw + (r0 + g + 8) * kC + j0 + 2 * t4) = pack_bf16(pv[2], pv[3]);
      }
    }
  }
  __syncthreads();

  // 3. qg = s q ⊙ Γ, kgT = (k ⊙ Γ_last / Γ)^T, gamma = Γ_last (rows past L hold zeros and g = 0).
  {
    bf16* qgw = static_cast<bf16*>(cw.qg) + blk * kC * KMAX;
    for (int idx = tid; idx < kC * KMAX / 2; idx += kThreads) {
      const int i = idx / (KMAX / 2), d = 2 * (idx % (KMAX / 2));
      *reinterpret_cast<uint32_t*>(qgw + i * KMAX + d) =
          pack_bf16(bf(sm.q[i][d]) * __expf(sm.G[i][d]), bf(sm.q[i][d + 1]) * __expf(sm.G[i][d + 1]));
    }
    bf16* kgw = static_cast<bf16*>(cw.kgT) + blk * KMAX * kC;
    const float* Gl = sm.G[kC - 1];
    for (int idx = tid; idx < KMAX * kC / 2; idx += kThreads) {
      const int d = idx / (kC / 2), i = 2 * (idx % (kC / 2));
      *reinterpret_cast<uint32_t*>(kgw + d * kC + i) = pack_bf16(bf(sm.k[i][d]) * __expf(Gl[d] - sm.G[i][d]),
                                                                 bf(sm.k[i + 1][d]) * __expf(Gl[d] - sm.G[i + 1][d]));
    }
    for (int d = tid; d < KMAX; d += kThreads) cw.gamma[blk * KMAX + d] = __expf(Gl[d]);
  }

  // 4. A = (I + T)^-1 in place. (a) The four diagonal 16x16 blocks, one column a thread.
  {
    float x[16];
    const int bi = tid >> 4, col = tid & 15;
    if (tid < 64) {
      const float* Tb = &sm.T[16 * bi][16 * bi];
#pragma unroll
      for (int r = 0; r < 16; ++r) {
        float acc = r == col ? 1.f : 0.f;
#pragma unroll
        for (int m = 0; m < r; ++m) acc -= Tb[r * (kC + 1) + m] * x[m];
        x[r] = acc;
      }
    }
    __syncthreads();
    if (tid < 64) {
#pragma unroll
      for (int r = 0; r < 16; ++r) sm.T[16 * bi + r][16 * bi + col] = x[r];
    }
    __syncthreads();
  }
  // (b) Block rows in order: A_{bi,bj} = -A_{bi,bi} Σ_{bj<=m<bi} T_{bi,m} A_{m,bj}.
  {
    float(*R)[16][17] = reinterpret_cast<float(*)[16][17]>(&sm.A[0][0]);
    for (int bi = 1; bi < 4; ++bi) {
      for (int e = tid; e < bi * 256; e += kThreads) {
        const int bj = e >> 8, r = (e >> 4) & 15, cc = e & 15;
        float acc = 0.f;
        for (int m = 16 * bj; m < 16 * bi; ++m) acc += sm.T[16 * bi + r][m] * sm.T[m][16 * bj + cc];
        R[bj][r][cc] = acc;
      }
      __syncthreads();
      for (int e = tid; e < bi * 256; e += kThreads) {
        const int bj = e >> 8, r = (e >> 4) & 15, cc = e & 15;
        float acc = 0.f;
        for (int m = 0; m <= r; ++m) acc -= sm.T[16 * bi + r][16 * bi + m] * R[bj][m][cc];
        sm.T[16 * bi + r][16 * bj + cc] = acc;
      }
      __syncthreads();
    }
  }

  // 5. A in bf16, (b⊙k⊙Γ)^T into the space of q and k, then W = A (b⊙k⊙Γ) and U = A (w⊙v) on tensor cores.
  bf16* XT = &sm.q[0][0];  // [KMAX or 64 columns][kLdC]: transposed right-hand side
  for (int idx = tid; idx < kC * kC / 2; idx += kThreads) {
    const int i = idx / (kC / 2), j = 2 * (idx % (kC / 2));
    *reinterpret_cast<uint32_t*>(&sm.A[i][j]) = pack_bf16(sm.T[i][j], sm.T[i][j + 1]);
  }
  for (int idx = tid; idx < KMAX * kC / 2; idx += kThreads) {
    const int d = idx / (kC / 2), j = 2 * (idx % (kC / 2));
    *reinterpret_cast<uint32_t*>(XT + d * kLdC + j) = pack_bf16(bf(sm.bk[j][d]) * __expf(sm.G[j][d]),
                                                                bf(sm.bk[j + 1][d]) * __expf(sm.G[j + 1][d]));
  }
  __syncthreads();
  {
    constexpr int NT = KMAX / 16;  // this warp's n-tiles: columns nh·KMAX/2 + 8·nt
    const int n0 = nh * (KMAX / 2);
    float acc[NT][4];
    zero(acc);
    mma_rows(acc, &sm.A[0][0], kLdC, 16 * rb, XT, kLdC, n0, rb + 1, lane);  // A lower triangular: blocks 0..rb
    bf16* Ww = static_cast<bf16*>(cw.W) + blk * kC * KMAX;
    const int i = 16 * rb + g;
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) {
      *reinterpret_cast<uint32_t*>(Ww + i * KMAX + n0 + 8 * nt + 2 * t4) = pack_bf16(acc[nt][0], acc[nt][1]);
      *reinterpret_cast<uint32_t*>(Ww + (i + 8) * KMAX + n0 + 8 * nt + 2 * t4) = pack_bf16(acc[nt][2], acc[nt][3]);
    }
  }
  bf16* Uw = static_cast<bf16*>(cw.U) + blk * kC * cw.vpad;
  const int hw = input_head(p.w, hv, p.HV, group);
  for (int v0 = 0; v0 < cw.vpad; v0 += 64) {
    __syncthreads();  // the previous right-hand side is consumed
    {
      constexpr int E = kC * 64 / kThreads, step = kThreads / 64;
      float wv[E], vv[E];  // element idx = tid + kThreads e: token (tid >> 6) + step e, column tid & 63
      const int j0 = tid >> 6, cc = tid & 63;
      gather(vv, p.v, tok0, hv, j0, step, v0 + cc, L, V, 0.f);
      gather(wv, p.w, tok0, hw, j0, step, v0 + cc, L, V, 1.f);
#pragma unroll
      for (int e = 0; e < E; ++e) XT[cc * kLdC + j0 + step * e] = __float2bfloat16_rn(wv[e] * vv[e]);
    }
    __syncthreads();
    float acc[4][4];  // columns v0 + 32·nh + 8·nt
    zero(acc);
    mma_rows(acc, &sm.A[0][0], kLdC, 16 * rb, XT, kLdC, 32 * nh, rb + 1, lane);
    const int i = 16 * rb + g, u0 = v0 + 32 * nh;
#pragma unroll
    for (int nt = 0; nt < 4; ++nt) {
      *reinterpret_cast<uint32_t*>(Uw + i * cw.vpad + u0 + 8 * nt + 2 * t4) = pack_bf16(acc[nt][0], acc[nt][1]);
      *reinterpret_cast<uint32_t*>(Uw + (i + 8) * cw.vpad + u0 + 8 * nt + 2 * t4) = pack_bf16(acc[nt][2], acc[nt][3]);
    }
  }
}

template <int KMAX>
void launch(const Gdn2Params& p) {
  const size_t smem = sizeof(IntraSmem<KMAX>);
  GDN2_CUDA_CHECK(cudaFuncSetAttribute(chunk_intra_kernel<KMAX>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                       static_cast<int>(smem)));
  chunk_intra_kernel<KMAX><<<dim3(p.chunk.chunks, p.HV), kThreads, smem, p.stream>>>(p);
  GDN2_CUDA_CHECK(cudaGetLastError());
}

}  // namespace

void launch_chunk_intra(const Gdn2Params& p) {
  if (p.chunk.chunks == 0) return;
  if (p.chunk.kmax == 64)
    launch<64>(p);
  else if (p.chunk.kmax == 128)
    launch<128>(p);
  else
    GDN2_THROW(UnsupportedError, "CUDA GDN-2 tensor-core chunk path: kmax=", p.chunk.kmax, " is not 64 or 128");
}

}  // namespace gdn2::cuda
