// Tensor-core chunk path, part 1 (token-parallel): one block per (chunk of 64 tokens, value head) forms everything a
// chunk needs that does not depend on the state, and writes it to the workspace (params.h, ChunkWork):
//   G = cumsum g;  T_ij = Σ_d (b⊙k)_id k_jd e^{G_id - G_jd} (j < i);  P_ij = Σ_d (s q)_id k_jd e^{G_id - G_jd} (j <= i)
//   A = (I + T)^-1;  W = A (b⊙k⊙Γ);  U = A (w⊙v);  qg = s q⊙Γ;  kgT = (k⊙Γ_last/Γ)^T;  gamma = Γ_last;
//   and A itself when the backward asks for it (ChunkWork::A).
// G is kept in log2 units so every exponential is one ex2. Scores run on tensor cores with one anchor per 16-token
// column block, its last row a: the column operand is k_j 2^{G_a - G_j} <= 1, the row operand x_i 2^{G_i - G_a}, which
// is <= 1 below the diagonal and at most 2^{span} on it. When the span of a diagonal block exceeds kAnchorSpan (very
// negative gates) that block is recomputed pair by pair from the inputs. The two warps of a row block split the key
// channels and add their partial scores in a fixed order. The inverse is blocked: the four 16x16 diagonal inverses by
// substitution, then block rows in order. Loops stay rolled where they are long: the kernel is issue-bound, and
// straight-line code streams from the instruction cache once per block.
#include "cuda/common.cuh"
#include "cuda/gdn2/kernels.h"
#include "cuda/gdn2/load.cuh"
#include "cuda/gdn2/mma.cuh"

namespace gdn2::cuda {

namespace {

constexpr int kC = 64, kThreads = 256, kLdC = kC + 8;
constexpr float kAnchorSpan = 60.f * kLog2e;  // 2^±86.6 is far inside fp32 and bf16 range

template <int KMAX>
struct IntraSmem {
  static constexpr int LDK = KMAX + 8, LDG = KMAX + 8;
  float G[kC][LDG];      // inclusive cumsum of g over the chunk, times log2(e)
  bf16 q[kC][LDK];       // s·q/|q|; after the scores X = b⊙k⊙Γ
  bf16 k[kC][LDK];       // k/|k|, then kc = k 2^{G_a - G} (a: the last row of the token's 16-row block)
  bf16 bk[kC][LDK];      // b ⊙ k/|k|; after X, slices of w⊙v
  float T[kC][kC + 1];   // cumsum segment totals, then T, then A = (I + T)^-1 in place
  bf16 A[kC][kLdC];      // partial scores of the second K half during the scores; the solve's products; A in bf16
  float kf[kC];          // 1/|k| of each row (the exact fallback re-reads k)
  int anchored[4];       // per diagonal block: its span allows anchored scores
};

__device__ __forceinline__ float bf(bf16 x) { return __bfloat162float(x); }

// Barrier 1 + pair for the 64 threads of a warp pair; the id is an immediate in each branch (a register id makes
// ptxas reserve all 16 barriers and hides the barrier from compute-sanitizer's racecheck).
__device__ __forceinline__ void pair_barrier(int pair) {
  switch (pair) {
    case 0: asm volatile("bar.sync 1, 64;\n" ::: "memory"); break;
    case 1: asm volatile("bar.sync 2, 64;\n" ::: "memory"); break;
    case 2: asm volatile("bar.sync 3, 64;\n" ::: "memory"); break;
    default: asm volatile("bar.sync 4, 64;\n" ::: "memory"); break;
  }
}

__device__ __forceinline__ void unpack8(float (&x)[8], uint4 u) {
  const uint32_t w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
  for (int e = 0; e < 4; ++e) {
    const float2 f = unpack_bf16(w[e]);
    x[2 * e] = f.x, x[2 * e + 1] = f.y;
  }
}

__device__ __forceinline__ uint4 pack8(const float (&x)[8]) {
  return make_uint4(pack2(x[0], x[1]), pack2(x[2], x[3]), pack2(x[4], x[5]), pack2(x[6], x[7]));
}

__device__ __forceinline__ void load_f32x8(float (&x)[8], const float* p) {
  const float4 a = *reinterpret_cast<const float4*>(p), b = *reinterpret_cast<const float4*>(p + 4);
  x[0] = a.x, x[1] = a.y, x[2] = a.z, x[3] = a.w, x[4] = b.x, x[5] = b.y, x[6] = b.z, x[7] = b.w;
}

// Eight channels of a bf16 row times 2^G (G in log2 units), packed back to bf16.
__device__ __forceinline__ uint4 times_exp2_8(const bf16* x, const float* G) {
  float v[8], gg[8];
  unpack8(v, *reinterpret_cast<const uint4*>(x));
  load_f32x8(gg, G);
#pragma unroll
  for (int e = 0; e < 8; ++e) v[e] *= ex2(gg[e]);
  return pack8(v);
}

template <int KMAX>
__global__ void __launch_bounds__(kThreads, 2) chunk_intra_kernel(Gdn2Params p) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  using Smem = IntraSmem<KMAX>;
  Smem& sm = *reinterpret_cast<Smem*>(smem_raw);
  constexpr int LDK = Smem::LDK, CPR = KMAX / 8, RPP = kThreads / CPR;  // 8-channel pieces per row, rows per pass
  const ChunkWork& cw = p.chunk;
  const int c = blockIdx.x, hv = blockIdx.y;
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, t4 = lane & 3;
  const int K = p.K, V = p.V, group = p.HV / p.H, hq = hv / group;
  const int64_t tok0 = cw.chunk_tok0[c];
  const int L = static_cast<int>(cw.chunk_len[c]);
  const int64_t blk = static_cast<int64_t>(c) * p.HV + hv;
  const bool vec = p.vec8;

  // 0. The common layout (bf16 q, k, b rows; channel g in bf16 or fp32; 16-byte aligned): every raw row of the chunk
  //    arrives by cp.async at once, q, k and b in place of their normalised forms, g at the start of G's rows.
  const bool staged = vec && p.q.type == ElemType::bf16 && p.k.type == ElemType::bf16 &&
                      (p.b.form == Gate::absent || (p.b.form == Gate::channel && p.b.type == ElemType::bf16)) &&
                      p.g.form == Gate::channel && (p.g.type == ElemType::bf16 || p.g.type == ElemType::f32);
  const int hb = input_head(p.b, hv, p.HV, group), hg = input_head(p.g, hv, p.HV, group);
  if (staged) {
    const int pieces = K / 8, gpieces = p.g.type == ElemType::f32 ? K / 4 : K / 8;
    const bool has_b = p.b.form != Gate::absent;
#pragma unroll 1
    for (int it = tid; it < L * pieces; it += kThreads) {
      const int i = it / pieces, c8 = 8 * (it % pieces);
      const int64_t tok = tok0 + i;
      cp_async_16(&sm.q[i][c8], static_cast<const bf16*>(p.q.ptr) + tok * p.q.stride_token + hq * p.q.stride_head + c8);
      cp_async_16(&sm.k[i][c8], static_cast<const bf16*>(p.k.ptr) + tok * p.k.stride_token + hq * p.k.stride_head + c8);
      if (has_b)
        cp_async_16(&sm.bk[i][c8],
                    static_cast<const bf16*>(p.b.ptr) + tok * p.b.stride_token + hb * p.b.stride_head + c8);
    }
    const int esize = p.g.type == ElemType::f32 ? 4 : 2;
#pragma unroll 1
    for (int it = tid; it < L * gpieces; it += kThreads) {
      const int i = it / gpieces, c = it % gpieces;
      cp_async_16(reinterpret_cast<unsigned char*>(&sm.G[i][0]) + 16 * c,
                  static_cast<const unsigned char*>(p.g.ptr) +
                      ((tok0 + i) * p.g.stride_token + hg * p.g.stride_head) * esize + 16 * c);
    }
    cp_async_commit();
    cp_async_wait<0>();
    __syncthreads();
  }

  // 1a. G: thread (segment s, channel d) sums its segment of rows, then adds the earlier segments' totals.
  {
    constexpr int NSEG = kThreads / KMAX, RS = kC / NSEG;
    const int d = tid % KMAX, s = tid / KMAX, i0 = s * RS;
    const bool col_ok = d < K && p.g.form != Gate::absent;
    float x[RS];
    if (staged) {  // raw g from shared memory: all of a row's raw values are read before any G of it is written
      const bool f32 = p.g.type == ElemType::f32;
#pragma unroll
      for (int r = 0; r < RS; ++r) {
        const float* row = sm.G[i0 + r];
        x[r] = col_ok && i0 + r < L ? (f32 ? row[d] : bf(reinterpret_cast<const bf16*>(row)[d])) : 0.f;
      }
      __syncthreads();
    } else {
      const int64_t gbase = hg * p.g.stride_head + (p.g.form == Gate::channel ? d : 0);
#pragma unroll
      for (int r = 0; r < RS; ++r)
        x[r] = col_ok && i0 + r < L ? load_elem(p.g.ptr, p.g.type, (tok0 + i0 + r) * p.g.stride_token + gbase) : 0.f;
    }
    if (p.a_log != nullptr && col_ok) {
      const float a_log = p.a_log[hg];
      const float dt = p.dt_bias == nullptr ? 0.f : p.dt_bias[p.g.form == Gate::channel ? hg * K + d : hg];
#pragma unroll
      for (int r = 0; r < RS; ++r)
        if (i0 + r < L) x[r] = decay_from_f(x[r], a_log, dt);
    }
    float run = 0.f;
#pragma unroll
    for (int r = 0; r < RS; ++r) {
      run += x[r];
      sm.G[i0 + r][d] = run;
    }
    float* seg = &sm.T[0][0];  // [NSEG][KMAX]
    seg[s * KMAX + d] = run;
    __syncthreads();
    float pre = 0.f;
    for (int t = 0; t < s; ++t) pre += seg[t * KMAX + d];
#pragma unroll 4
    for (int i = i0; i < i0 + RS; ++i) sm.G[i][d] = (sm.G[i][d] + pre) * kLog2e;
  }

  // 1b. q and k normalised (a row's CPR threads reduce the sum of squares), b ⊙ k; 16-byte loads and stores.
  {
    const int c8 = 8 * (tid % CPR);
    // The raw values of channels c8.. of row i: staged in shared memory (where the result goes), or loaded.
    auto raw8 = [&](float(&v)[8], const bf16* staged_row, const InputView& view, int head, int i, float absent) {
      if (staged && view.form != Gate::absent) {
        if (i < L && c8 < K)
          unpack8(v, *reinterpret_cast<const uint4*>(staged_row + c8));
        else
#pragma unroll
          for (int e = 0; e < 8; ++e) v[e] = 0.f;
      } else {
        load_input(v, view, tok0 + i, head, c8, K, i < L, vec, absent);
      }
    };
#pragma unroll 1
    for (int i = tid / CPR; i < kC; i += RPP) {
      float x[8], kn[8], b[8];
      auto norm_factor = [&](const float(&v)[8], float scale) {
        float ss = 0.f;
#pragma unroll
        for (int e = 0; e < 8; ++e) ss += v[e] * v[e];
#pragma unroll
        for (int o = CPR / 2; o > 0; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
        return scale * (p.l2norm ? rsqrtf(ss + 1e-6f) : 1.f);
      };
      raw8(x, sm.q[i], p.q, hq, i, 0.f);
      const float fq = norm_factor(x, p.scale);
#pragma unroll
      for (int e = 0; e < 8; ++e) x[e] *= fq;
      *reinterpret_cast<uint4*>(&sm.q[i][c8]) = pack8(x);
      raw8(kn, sm.k[i], p.k, hq, i, 0.f);
      const float fk = norm_factor(kn, 1.f);
      if (c8 == 0) sm.kf[i] = fk;
#pragma unroll
      for (int e = 0; e < 8; ++e) kn[e] *= fk;
      *reinterpret_cast<uint4*>(&sm.k[i][c8]) = pack8(kn);
      raw8(b, sm.bk[i], p.b, hb, i, 0.f);
#pragma unroll
      for (int e = 0; e < 8; ++e) b[e] *= kn[e];
      *reinterpret_cast<uint4*>(&sm.bk[i][c8]) = pack8(b);
    }
  }
  __syncthreads();

  // 2. kgT = (k ⊙ Γ_last/Γ)^T with kc = k 2^{G_a - G} in place of k; gamma; the diagonal blocks' spans; T = 0.
  {
    for (int it = tid; it < kC * (kC + 1); it += kThreads) (&sm.T[0][0])[it] = 0.f;  // blocks above the diagonal
    bf16* kgw = static_cast<bf16*>(cw.kgT) + blk * KMAX * kC;
#pragma unroll 1
    for (int it = tid; it < KMAX * (kC / 8); it += kThreads) {
      const int d = it % KMAX, i8 = 8 * (it / KMAX);
      const float gl = sm.G[kC - 1][d], ga = sm.G[(i8 | 15)][d];
      float x[8];
#pragma unroll
      for (int e = 0; e < 8; ++e) {
        const float kv = bf(sm.k[i8 + e][d]), gi = sm.G[i8 + e][d];
        x[e] = kv * ex2(gl - gi);
        sm.k[i8 + e][d] = __float2bfloat16_rn(kv * ex2(ga - gi));
      }
      *reinterpret_cast<uint4*>(kgw + d * kC + i8) = pack8(x);
    }
    if (tid < KMAX) cw.gamma[blk * KMAX + tid] = ex2(sm.G[kC - 1][tid]);
    if (warp < 4) {
      float span = 0.f;
      for (int d = lane; d < KMAX; d += 32) span = fmaxf(span, sm.G[16 * warp][d] - sm.G[16 * warp + 15][d]);
#pragma unroll
      for (int o = 16; o > 0; o >>= 1) span = fmaxf(span, __shfl_xor_sync(0xffffffffu, span, o));
      if (lane == 0) sm.anchored[warp] = span < kAnchorSpan;
    }
  }
  __syncthreads();

  // 3. Scores of the ten 16x16 blocks (rb, cb <= rb), three or two per warp pair, the pairs' warps kh = 0, 1 taking
  //    key channels kh·KMAX/2 ..; partial sums meet in shared memory and warp kh = 0 adds them and writes T (shared)
  //    and P (workspace). The pairs with two blocks also write qg = s q ⊙ Γ.
  {
    // Block (rb, cb) of pair p's task t is nibble 3p + t of kBlocks as 4 rb + cb: pairs 0, 1 take {(3,3), (3,2), (0,0)}
    // and {(3,1), (3,0), (1,0)}, pairs 2, 3 take {(2,2), (2,1)} and {(2,0), (1,1)}.
    constexpr uint64_t kBlocks = 0x0ull | 0xEull << 4 | 0xFull << 0 | 0x4ull << 20 | 0xCull << 16 | 0xDull << 12 |
                                 0x9ull << 28 | 0xAull << 24 | 0x5ull << 40 | 0x8ull << 36;
    const int pair = warp & 3, kh = warp >> 2;
    float* part = reinterpret_cast<float*>(&sm.A[0][0]) + pair * 2 * 16 * 17;  // [2][16][17]: T and P partials
    bf16* Pw = static_cast<bf16*>(cw.P) + blk * kC * kC;
    if (pair >= 2) {
      bf16* qgw = static_cast<bf16*>(cw.qg) + blk * kC * KMAX;
#pragma unroll 1
      for (int it = (pair - 2) * 32 + kh * 64 + lane; it < kC * CPR; it += 128) {
        const int i = it / CPR, c8 = 8 * (it % CPR);
        *reinterpret_cast<uint4*>(qgw + i * KMAX + c8) = times_exp2_8(&sm.q[i][c8], &sm.G[i][c8]);
      }
    }
#pragma unroll 1
    for (int task = 0; task < (pair < 2 ? 3 : 2); ++task) {
      const int code = static_cast<int>(kBlocks >> (4 * (3 * pair + task))) & 15;
      const int rb = code >> 2, cb = code & 3, r0 = 16 * rb;
      float t[2][4], pp[2][4];
      zero(t);
      zero(pp);
      const bool exact = cb == rb && !sm.anchored[rb];
      if (!exact) {
        const float* Ga = sm.G[16 * cb + 15];
#pragma unroll
        for (int kq = 0; kq < KMAX / 32; ++kq) {
          const int d0 = kh * (KMAX / 2) + 16 * kq + 2 * t4;
          uint32_t qa[4], ka[4];
#pragma unroll
          for (int h = 0; h < 4; ++h) {
            const int i = r0 + g + (h & 1) * 8, d = d0 + (h >> 1) * 8;
            const float2 gi = *reinterpret_cast<const float2*>(&sm.G[i][d]);
            const float2 ga = *reinterpret_cast<const float2*>(&Ga[d]);
            const float e0 = ex2(gi.x - ga.x), e1 = ex2(gi.y - ga.y);
            const float2 qv = unpack_bf16(ld_pair(&sm.q[i][d])), bv = unpack_bf16(ld_pair(&sm.bk[i][d]));
            qa[h] = pack2(qv.x * e0, qv.y * e1);
            ka[h] = pack2(bv.x * e0, bv.y * e1);
          }
          uint32_t bb[4];
          ldsm_b_nk(bb, &sm.k[0][0], LDK, 16 * cb, kh * (KMAX / 2) + 16 * kq, lane);
          mma16816(t[0], ka, bb[0], bb[1]);
          mma16816(t[1], ka, bb[2], bb[3]);
          mma16816(pp[0], qa, bb[0], bb[1]);
          mma16816(pp[1], qa, bb[2], bb[3]);
        }
      }
      if (kh == 1) {
#pragma unroll
        for (int nt = 0; nt < 2; ++nt)
#pragma unroll
          for (int h = 0; h < 4; ++h) {
            const int r = g + (h >> 1) * 8, cc = 8 * nt + 2 * t4 + (h & 1);
            part[r * 17 + cc] = t[nt][h];
            part[16 * 17 + r * 17 + cc] = pp[nt][h];
          }
      }
      pair_barrier(pair);
      if (kh == 0) {
#pragma unroll
        for (int nt = 0; nt < 2; ++nt) {
          float pv[4];
#pragma unroll
          for (int h = 0; h < 4; ++h) {
            const int r = g + (h >> 1) * 8, cc = 8 * nt + 2 * t4 + (h & 1), i = r0 + r, j = 16 * cb + cc;
            float tv = t[nt][h] + part[r * 17 + cc], pv_ = pp[nt][h] + part[16 * 17 + r * 17 + cc];
            if (exact) {  // pair by pair, exponents exact: k re-read and normalised as in step 1b
              const int64_t kb = (tok0 + j) * p.k.stride_token + hq * p.k.stride_head;
              tv = 0.f, pv_ = 0.f;
              for (int d = 0; d < (j <= i && j < L ? K : 0); ++d) {
                const float kd = bf(__float2bfloat16_rn(load_elem(p.k.ptr, p.k.type, kb + d) * sm.kf[j])) *
                                 ex2(sm.G[i][d] - sm.G[j][d]);
                tv += bf(sm.bk[i][d]) * kd;
                pv_ += bf(sm.q[i][d]) * kd;
              }
            }
            sm.T[i][j] = j < i ? tv : 0.f;
            pv[h] = j <= i ? pv_ : 0.f;
          }
          const int j0 = 16 * cb + 8 * nt + 2 * t4;
          *reinterpret_cast<uint32_t*>(Pw + (r0 + g) * kC + j0) = pack2(pv[0], pv[1]);
          *reinterpret_cast<uint32_t*>(Pw + (r0 + g + 8) * kC + j0) = pack2(pv[2], pv[3]);
        }
      }
      pair_barrier(pair);  // the partials are read before the next block's overwrite them
    }
    // Every warp passes the same number of barriers: the two-block pairs wait twice more (cheap, they are early), so
    // the barrier sequence is uniform across the block (racecheck counts it per warp).
    if (pair >= 2) {
      pair_barrier(pair);
      pair_barrier(pair);
    }
  }
  __syncthreads();

  // v and w slices of 64 columns arrive by cp.async into the space of kc (free now) while the inverse runs: row i
  // holds v at columns 0..63 and w at 64..127 (KMAX = 128 and bf16 v, w only).
  const int hw = input_head(p.w, hv, p.HV, group);
  const bool vw_staged = KMAX == 128 && vec && p.v.type == ElemType::bf16 &&
                         (p.w.form == Gate::absent || (p.w.form == Gate::channel && p.w.type == ElemType::bf16));
  bf16* VW = &sm.k[0][0];
  auto issue_vw = [&](int v0) {
#pragma unroll 1
    for (int it = tid; it < L * 8; it += kThreads) {
      const int i = it / 8, c8 = 8 * (it % 8);
      if (v0 + c8 >= V) continue;
      const int64_t tok = tok0 + i;
      cp_async_16(VW + i * LDK + c8,
                  static_cast<const bf16*>(p.v.ptr) + tok * p.v.stride_token + hv * p.v.stride_head + v0 + c8);
      if (p.w.form == Gate::channel)
        cp_async_16(VW + i * LDK + 64 + c8,
                    static_cast<const bf16*>(p.w.ptr) + tok * p.w.stride_token + hw * p.w.stride_head + v0 + c8);
    }
    cp_async_commit();
  };
  if (vw_staged) issue_vw(0);

  // 4. A = (I + T)^-1 in place. (a) The four 16x16 diagonal inverses, one column a thread (warps 0-1), while the
  //    other warps form X = b⊙k⊙Γ in the space of q.
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
    } else {
#pragma unroll 1
      for (int it = tid - 64; it < kC * CPR; it += kThreads - 64) {
        const int i = it / CPR, c8 = 8 * (it % CPR);
        *reinterpret_cast<uint4*>(&sm.q[i][c8]) = times_exp2_8(&sm.bk[i][c8], &sm.G[i][c8]);
      }
    }
    __syncthreads();
    if (tid < 64) {
#pragma unroll
      for (int r = 0; r < 16; ++r) sm.T[16 * bi + r][16 * bi + col] = x[r];
    }
    __syncthreads();
  }
  // (b) Block rows in order on tf32 tensor cores, warp bj taking block (bi, bj): R = Σ_{bj<=m<bi} T_{bi,m} A_{m,bj},
  //     then A_{bi,bj} = -A_{bi,bi} R once every R of the row is formed (they read T_{bi,m} where A_{bi,m} goes).
  {
    float* R = reinterpret_cast<float*>(&sm.A[0][0]) + warp * 16 * 17;  // [16][17] per warp
    constexpr int LT = kC + 1;
#pragma unroll 1
    for (int bi = 1; bi < 4; ++bi) {
      if (warp < bi) {
        float r[2][4];
        zero(r);
        for (int m = warp; m < bi; ++m) mma_tf32_16x16x16(r, &sm.T[0][0], LT, 16 * bi, 16 * m, &sm.T[0][0], LT, 16 * m, 16 * warp, lane);
#pragma unroll
        for (int nt = 0; nt < 2; ++nt)
#pragma unroll
          for (int h = 0; h < 4; ++h) R[(g + (h >> 1) * 8) * 17 + 8 * nt + 2 * t4 + (h & 1)] = r[nt][h];
      }
      __syncthreads();
      if (warp < bi) {
        float x[2][4];
        zero(x);
        mma_tf32_16x16x16(x, &sm.T[0][0], LT, 16 * bi, 16 * bi, R, 17, 0, 0, lane);
#pragma unroll
        for (int nt = 0; nt < 2; ++nt)
#pragma unroll
          for (int h = 0; h < 4; ++h) sm.T[16 * bi + g + (h >> 1) * 8][16 * warp + 8 * nt + 2 * t4 + (h & 1)] = -x[nt][h];
      }
      __syncthreads();
    }
  }
  for (int idx = tid; idx < kC * kC / 2; idx += kThreads) {
    const int i = idx / (kC / 2), j = 2 * (idx % (kC / 2));
    *reinterpret_cast<uint32_t*>(&sm.A[i][j]) = pack2(sm.T[i][j], sm.T[i][j + 1]);
  }
  __syncthreads();
  if (cw.A != nullptr) {  // the backward reads A: [64][64] bf16, 16-byte pieces
    bf16* Aw = static_cast<bf16*>(cw.A) + blk * kC * kC;
    for (int it = tid; it < kC * kC / 8; it += kThreads) {
      const int i = it / (kC / 8), c8 = 8 * (it % (kC / 8));
      *reinterpret_cast<uint4*>(Aw + i * kC + c8) = *reinterpret_cast<const uint4*>(&sm.A[i][c8]);
    }
  }

  // 5. W = A X and U = A (w⊙v) on tensor cores; warp (rb, nh): rows 16·rb .., half nh of the columns.
  const int rb = warp & 3, nh = warp >> 2;
  {
    constexpr int NT = KMAX / 16;
    const int n0 = nh * (KMAX / 2);
    float acc[NT][4];
    zero(acc);
    mma_rows_kn(acc, &sm.A[0][0], kLdC, 16 * rb, &sm.q[0][0], LDK, n0, rb + 1, lane);  // A lower triangular
    bf16* Ww = static_cast<bf16*>(cw.W) + blk * kC * KMAX;
    const int i = 16 * rb + g;
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) {
      *reinterpret_cast<uint32_t*>(Ww + i * KMAX + n0 + 8 * nt + 2 * t4) = pack2(acc[nt][0], acc[nt][1]);
      *reinterpret_cast<uint32_t*>(Ww + (i + 8) * KMAX + n0 + 8 * nt + 2 * t4) = pack2(acc[nt][2], acc[nt][3]);
    }
  }
  bf16* Uw = static_cast<bf16*>(cw.U) + blk * kC * cw.vpad;
  bf16* Y = &sm.bk[0][0];
#pragma unroll 1
  for (int v0 = 0; v0 < cw.vpad; v0 += 64) {
    __syncthreads();  // X was formed from b⊙k, and the previous slice is consumed
    if (vw_staged) {
      cp_async_wait<0>();
      __syncthreads();
    }
#pragma unroll 1
    for (int it = tid; it < kC * 8; it += kThreads) {
      const int i = it / 8, c8 = 8 * (it % 8);
      float vv[8], wv[8];
      if (vw_staged) {
        const bool ok = i < L && v0 + c8 < V;
        if (ok) unpack8(vv, *reinterpret_cast<const uint4*>(VW + i * LDK + c8));
        if (ok && p.w.form == Gate::channel) unpack8(wv, *reinterpret_cast<const uint4*>(VW + i * LDK + 64 + c8));
#pragma unroll
        for (int e = 0; e < 8; ++e) {
          if (!ok) vv[e] = 0.f;
          if (!ok || p.w.form != Gate::channel) wv[e] = 1.f;
        }
      } else {
        load_input(vv, p.v, tok0 + i, hv, v0 + c8, V, i < L, vec, 0.f);
        load_input(wv, p.w, tok0 + i, hw, v0 + c8, V, i < L, vec, 1.f);
      }
#pragma unroll
      for (int e = 0; e < 8; ++e) vv[e] *= wv[e];
      *reinterpret_cast<uint4*>(Y + i * LDK + c8) = pack8(vv);
    }
    __syncthreads();
    if (vw_staged && v0 + 64 < cw.vpad) issue_vw(v0 + 64);  // the next slice lands while this one is multiplied
    float acc[4][4];  // columns v0 + 32·nh + 8·nt
    zero(acc);
    mma_rows_kn(acc, &sm.A[0][0], kLdC, 16 * rb, Y, LDK, 32 * nh, rb + 1, lane);
    const int i = 16 * rb + g, u0 = v0 + 32 * nh;
#pragma unroll
    for (int nt = 0; nt < 4; ++nt) {
      *reinterpret_cast<uint32_t*>(Uw + i * cw.vpad + u0 + 8 * nt + 2 * t4) = pack2(acc[nt][0], acc[nt][1]);
      *reinterpret_cast<uint32_t*>(Uw + (i + 8) * cw.vpad + u0 + 8 * nt + 2 * t4) = pack2(acc[nt][2], acc[nt][3]);
    }
  }
}

template <int KMAX>
void launch(const Gdn2Params& p) {
  launch_with_smem(chunk_intra_kernel<KMAX>, dim3(p.chunk.chunks, p.HV), kThreads, sizeof(IntraSmem<KMAX>), p.stream,
                   p);
}

}  // namespace

void launch_chunk_intra(const Gdn2Params& p) {
  if (p.chunk.chunks == 0) return;
  with_kmax(p.chunk.kmax, [&](auto kmax) { launch<decltype(kmax)::value>(p); });
}

}  // namespace gdn2::cuda
