// Chunk backward for bf16/fp16 inputs on tensor cores, over the forward's chunks of 64 tokens (the math of
// src/cpu/gdn2_chunk.cpp, ChunkKernel::backward, at chunk 64). It reads what the recomputed forward left in its
// workspace (chunk_intra.cu: W, qg, kgT, U, P, γ and A = (I + T)^-1, bf16) and the states entering the chunks (h).
// The state-gradient and gradient kernels' products are bf16 x bf16 with fp32 accumulation (mma.cuh, mma_smem:
// operands by ldmatrix; the state gradient's running sum stays fp32, each chunk's goes to dh in bf16, as the products
// take it), the pair kernel's run in one tf32 pass (mma1_rows2 and mma1_rows_sum2). The solves of the fp32 path
// (chunk_bwd.cu) become products with the stored A.
//   0. chunk_dstate64_kernel, the reverse pass over each sequence's chunks for the state gradients dh (and dh0).
//   1. chunk_grad64_kernel, one block per (chunk, value head), over slices of 64 columns of V: V' = U - W S,
//      dV' = Kt dS + P^T dO, dX = A^T dV' (dv = dX⊙w, dw = dX⊙v), and the sums d(q⊙Γ) = dO S^T, dKt = V' dS^T,
//      -dW = dV' S^T, dP = dO V'^T, dX U^T; then d(b⊙k⊙Γ) = A^T dW and dT = -(dX U^T + d(b⊙k⊙Γ) W^T) below the
//      diagonal. d(q⊙Γ), dKt and d(b⊙k⊙Γ) go to the gradient buffers gq, gk, gb; dP and dT to dpt.
//   2. chunk_pair64_kernel, a cluster of two blocks per (chunk, value head), each taking half of the key channels
//      (the rows' norms and the L2 norm backward's dot products exchanged through the cluster's shared memory): the
//      decayed pair scores' backward
//      dq̂_i += s Σ_j dP_ij k̂_j e^{G_i - G_j}, d(b⊙k̂)_i += Σ_j dT_ij k̂_j e^{G_i - G_j},
//      dk̂_j += Σ_i (s dP_ij q̂_i + dT_ij (b⊙k̂)_i) e^{G_i - G_j}, as products anchored per 16-token block of rows R
//      (every factor <= 1 off the diagonal block, at most e^{span} on it; a block whose span exceeds kSpan sums its own
//      16x16 pairs one by one instead), then the elementwise chain rule through Γ, Kt and b⊙k̂, the L2 norms and the
//      cumsum of g.
#include <cooperative_groups.h>

#include "cuda/common.cuh"
#include "cuda/gdn2/chunk_prep.cuh"
#include "cuda/gdn2/chunk_stage.cuh"
#include "cuda/gdn2/kernels.h"
#include "cuda/gdn2/load.cuh"
#include "cuda/gdn2/mma.cuh"
#include "cuda/gdn2/segment_scan.cuh"

namespace gdn2::cuda {

namespace {

namespace cg = cooperative_groups;

constexpr int kC = 64, kCols = 64, kLd = kC + 8;  // [.., 64] fp32 tiles: row stride 8 mod 32 words
// The state-gradient pass and the pair kernel run 8 warps per block (the pair kernel two blocks per SM); the gradient
// kernel 16 (one block per SM: its shared memory allows no more, so the second eight warps hide latency).
constexpr int kThreads = 256, kWideThreads = 512;
constexpr float kSpan = 60.f;  // e^60 and e^-60 are far inside fp32 (and tf32) range

__device__ __forceinline__ float bf(bf16 x) { return __bfloat162float(x); }

// Columns col and col + 1 (col even) of a row of `cols` elements, at element `at` of p: one access when both exist and
// rows pair up (cols even, so at is even), else the ones that exist one by one.
__device__ __forceinline__ void store_pair(void* p, ElemType t, int64_t at, int col, int cols, float x0, float x1) {
  if (col + 1 < cols && cols % 2 == 0) {
    const float x[2] = {x0, x1};
    store_elems<2>(p, t, at, x);
  } else {
    if (col < cols) store_elem(p, t, at, x0);
    if (col + 1 < cols) store_elem(p, t, at + 1, x1);
  }
}
// The matching load of two fp32 elements (zeros for columns past cols), through load.cuh's load_elems.
__device__ __forceinline__ void load_pair(const float* p, int64_t at, int col, int cols, float& x0, float& x1) {
  float x[2];
  load_elems<2>(x, p, ElemType::f32, at, cols - col, cols % 2 == 0);
  x0 = x[0], x1 = x[1];
}

// Rows [0, rows) and columns [v0, v0 + 64) of a row-major fp32 or bf16 matrix with V columns into tile[rows][kLd] of
// the same type: 16-byte pieces by cp.async where V is a multiple of a piece (then every row start and piece is
// 16-byte aligned, src is), else element by element (fp32 by 4-byte cp.async, bf16 by plain loads); zeros past V and
// from row `valid` on.
template <class T>
__device__ __forceinline__ void load_slice(T (*tile)[kLd], const T* src, int rows, int valid, int V, int v0) {
  constexpr int E = 16 / sizeof(T);  // elements a piece
  const bool vec = V % E == 0;
  for (int it = threadIdx.x; it < rows * (kCols / E); it += blockDim.x) {
    const int r = it / (kCols / E), ce = E * (it % (kCols / E)), col = v0 + ce;
    T* d = &tile[r][ce];
    const T* s = src + static_cast<int64_t>(r) * V + col;
    if (r < valid && vec && col + E <= V) {
      cp_async_16(d, s);
    } else {
#pragma unroll
      for (int e = 0; e < E; ++e) {
        const bool in = r < valid && col + e < V;
        if constexpr (sizeof(T) == 4) {
          if (in)
            cp_async_4(d + e, s + e);
          else
            d[e] = 0.f;
        } else {
          d[e] = in ? s[e] : __float2bfloat16_rn(0.f);
        }
      }
    }
  }
}

// rows x cols bf16 from a row-major source (row stride src_ld) into tile rows of stride ld, 16-byte pieces.
__device__ __forceinline__ void load_bf16_tile(bf16* tile, int ld, const bf16* src, int src_ld, int rows, int cols) {
  const int pieces = cols / 8;
  for (int it = threadIdx.x; it < rows * pieces; it += blockDim.x) {
    const int r = it / pieces, c8 = 8 * (it % pieces);
    cp_async_16(tile + r * ld + c8, src + static_cast<int64_t>(r) * src_ld + c8);
  }
}

// Whether dO can come by cp.async: BF16 (as training passes it) in 16-byte pieces.
__device__ __forceinline__ bool dO_by_copy(const Gdn2Bwd64Params& bp) {
  return bp.d_o_type == ElemType::bf16 && bp.f.V % 8 == 0 && reinterpret_cast<uintptr_t>(bp.d_o) % 16 == 0;
}

// dO of value head hv, rows [0, kC) from token tok0 and columns [v0, v0 + 64), into tile by cp.async (dO_by_copy):
// zeros from row `valid` on and past V, written directly. Issued, not committed.
__device__ __forceinline__ void load_dO_tile(bf16 (*tile)[kLd], const Gdn2Bwd64Params& bp, int64_t tok0, int valid,
                                             int hv, int v0) {
  const int V = bp.f.V;
  for (int it = threadIdx.x; it < kC * (kCols / 8); it += blockDim.x) {
    const int r = it / (kCols / 8), c8 = 8 * (it % (kCols / 8)), col = v0 + c8;
    bf16* d = &tile[r][c8];
    if (r < valid && col < V)  // col + 8 <= V: V is a multiple of 8
      cp_async_16(d, static_cast<const bf16*>(bp.d_o) + ((tok0 + r) * bp.f.HV + hv) * static_cast<int64_t>(V) + col);
    else
      *reinterpret_cast<uint4*>(d) = make_uint4(0u, 0u, 0u, 0u);
  }
}

// load_value_tile's pieces (eight columns each) into a bf16 [kC][kLd] tile, two elements per 32-bit store.
template <int N, int THREADS>
__device__ __forceinline__ void store_value_tile(bf16 (*tile)[kLd], const float (&o)[N][8]) {
#pragma unroll
  for (int u = 0; u < N; ++u)
#pragma unroll
    for (int e = 0; e < 8; e += 2)
      *reinterpret_cast<uint32_t*>(&tile[piece_row<THREADS>(u)][piece_col<THREADS>(u) + e]) =
          pack2(o[u][e], o[u][e + 1]);
}

template <int KMAX>
struct DstateSmem {
  Stage<KMAX> st[2];  // the current chunk's tiles and the next one's (double buffer; U holds dO when it comes by copy)
  bf16 dO[kC][kLd];   // dO when it comes through registers
  bf16 dV[kC][kLd];  // -dV'
  bf16 dS[KMAX][kLd];
};
static_assert(sizeof(DstateSmem<128>) <= 227 * 1024, "one block of the state-gradient pass fits an SM");

// The state-gradient pass, one block per (64 columns, value head, segment; the forward's segments), walking the chunks
// in reverse with its slice of dS (in registers, below): dh[c] = dS, -dV' = -(Kt dS + P^T dO), then
// dS <- Diag(γ) dS + qg^T dO + W^T (-dV'); dh0 = dS at the start. kTransition: the context-parallel first pass over
// every segment but its sequence's first, from a zero gradient with kmax identity columns past vpad (dO = 0), giving
// [dS0 | M] in seg_state (as chunk_bwd.cu's pass does over chunks of 32).
template <int KMAX, bool kTransition>
__global__ void __launch_bounds__(kThreads, 1) chunk_dstate64_kernel(Gdn2Bwd64Params bp) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  DstateSmem<KMAX>& sm = *reinterpret_cast<DstateSmem<KMAX>*>(smem_raw);
  const Gdn2Params& p = bp.f;
  const ChunkWork& cw = p.chunk;
  const int col0 = blockIdx.x * kCols, hv = blockIdx.y, seg = blockIdx.z, tid = threadIdx.x;
  const int warp = tid >> 5, lane = tid & 31;
  const int K = p.K, V = p.V;
  const auto [n, c_first, c_last, first, last] = segment_of(cw.seg_seq, cw.seg_chunk0, cw.seq_chunk0, seg);
  if (kTransition && first) return;
  const bool trans = kTransition && col0 >= cw.vpad;  // transition columns: dO = 0
  const int64_t state_base = (static_cast<int64_t>(n) * p.HV + hv) * K * V;
  const int64_t seg_blk = static_cast<int64_t>(seg) * p.HV + hv;
  auto blk_of = [&](int c) { return static_cast<int64_t>(c) * p.HV + hv; };
  // A chunk's dO rows (none in the transition columns).
  auto dO_rows = [&](int c) { return trans ? 0 : static_cast<int>(cw.chunk_len[c]); };
  const bool dO_async = dO_by_copy(bp);  // dO with the stage's tiles, in its U tile; else through registers
  auto stage_next = [&](Stage<KMAX>& st, int c) {
    stage_load(st, cw, blk_of(c), 0, false);
    if (dO_async) load_dO_tile(st.U, bp, cw.chunk_tok0[c], dO_rows(c), hv, col0);
    cp_async_commit();
  };
  if (c_last > c_first) stage_next(sm.st[0], c_last - 1);
  // Product 1 (-dV'): warp w, rows 16 (w % 4) .. +15 and columns 32 (w / 4) .. +31. Product 2 (dS): key rows
  // 16 (w % RT) .. +15 and the w / RT-th of 8 / RT column groups. dS stays in fp32 in registers, in product 2's
  // accumulator layout (each element in one thread); shared memory holds its bf16 copy for product 1.
  constexpr int RT = KMAX / 16, WPR = 8 / RT, NT2 = 8 / WPR;
  const int r1 = 16 * (warp & 3), n1 = 32 * (warp >> 2);
  const int r2 = 16 * (warp % RT), n2 = (warp / RT) * (kCols / WPR);
  float dS[NT2][4];
#pragma unroll
  for (int nt = 0; nt < NT2; ++nt)
#pragma unroll
    for (int h = 0; h < 4; ++h) {
      dS[nt][h] = reverse_pass_entry(kTransition, last, acc_row(r2, lane, h), col0 + acc_col(n2, lane, nt, h), K, V,
                                     cw.vpad, KMAX, seg_blk, cw.seg_h0, bp.dht, state_base);
    }
  store_acc(&sm.dS[0][0], kLd, dS, r2, n2, lane);  // after every load is issued
  // This thread's elements of dS, rows below `rows` and columns col0 + .. below `cols`, to out (row stride ld).
  auto store_dS = [&](float* out, int64_t ld, int rows, int cols) {
#pragma unroll
    for (int nt = 0; nt < NT2; ++nt)
#pragma unroll
      for (int h = 0; h < 4; ++h) {
        const int d = acc_row(r2, lane, h), col = col0 + acc_col(n2, lane, nt, h);
        if (d < rows && col < cols) out[static_cast<int64_t>(d) * ld + col] = dS[nt][h];
      }
  };
  // The same for a chunk's dh [K, V] in bf16: adjacent column pairs as one 4-byte store where V is even.
  auto store_dh = [&](bf16* out) {
#pragma unroll
    for (int nt = 0; nt < NT2; ++nt)
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const int d = acc_row(r2, lane, 2 * e), col = col0 + acc_col(n2, lane, nt, 0);
        if (d >= K) continue;
        bf16* at = out + static_cast<int64_t>(d) * V + col;
        if (col + 1 < V && V % 2 == 0) {
          *reinterpret_cast<uint32_t*>(at) = pack2(dS[nt][2 * e], dS[nt][2 * e + 1]);
        } else {
          if (col < V) at[0] = __float2bfloat16_rn(dS[nt][2 * e]);
          if (col + 1 < V) at[1] = __float2bfloat16_rn(dS[nt][2 * e + 1]);
        }
      }
  };
  const int k_key = (K + 15) / 16;  // steps of 16 over the key channels (zeros past K)
  // Without the copy, dO of a chunk is loaded into registers one chunk step ahead (pieces of eight columns, load.cuh,
  // load_value_tile).
  constexpr int kIters = kC * kCols / 8 / kThreads;
  float o_next[kIters][8];
  auto load_dO = [&](int c) {
    if (!dO_async)
      load_value_tile<kIters, kThreads, kCols>(o_next, bp.d_o, bp.d_o_type, cw.chunk_tok0[c], dO_rows(c), hv, p.HV, V,
                                               col0);
  };
  if (c_last > c_first) load_dO(c_last - 1);
  int buf = 0;
#pragma unroll 1
  for (int c = c_last - 1; c >= c_first; --c, buf ^= 1) {
    const int L = static_cast<int>(cw.chunk_len[c]);
    __syncthreads();  // the previous chunk is done with every buffer, the other stage included
    const bool more = c > c_first;
    if (more) stage_next(sm.st[buf ^ 1], c - 1);
    if (!dO_async) store_value_tile<kIters, kThreads>(sm.dO, o_next);
    if (more) load_dO(c - 1);  // in flight during this step
    if (!kTransition) store_dh(static_cast<bf16*>(bp.dh) + blk_of(c) * K * V);
    if (more)
      cp_async_wait<1>();  // this chunk's stage (the group before the one just issued)
    else
      cp_async_wait<0>();
    __syncthreads();
    const Stage<KMAX>& st = sm.st[buf];
    const bf16* dO = dO_async ? &st.U[0][0] : &sm.dO[0][0];
    const int k_tok = (L + 15) / 16;  // steps of 16 over tokens: rows past L of the workspace and of dO are zeros
    {  // -dV' = -(Kt dS + P^T dO); P^T is upper triangular, so its 16-blocks start at the row block.
      float acc[4][4];
      zero(acc);
      mma_smem<4, true, false>(acc, &st.kgT[0][0], kStageLd, r1, &sm.dS[0][0], kLd, n1, 0, k_key, lane);
      mma_smem<4, true, false>(acc, &st.P[0][0], kStageLd, r1, dO, kLd, n1, r1,
                               k_tok > r1 / 16 ? k_tok - r1 / 16 : 0, lane);
      store_acc(&sm.dV[0][0], kLd, acc, r1, n1, lane, [](int, int, float x) { return -x; });
    }
    __syncthreads();
    {  // dS <- Diag(γ) dS + qg^T dO + W^T (-dV'); the bf16 copy of this warp's part after every read of it.
#pragma unroll
      for (int nt = 0; nt < NT2; ++nt)
#pragma unroll
        for (int h = 0; h < 4; ++h) dS[nt][h] *= st.gamma[acc_row(r2, lane, h)];
      constexpr int LDK = Stage<KMAX>::LDK;
      mma_smem<NT2, true, false>(dS, &st.qg[0][0], LDK, r2, dO, kLd, n2, 0, k_tok, lane);
      mma_smem<NT2, true, false>(dS, &st.W[0][0], LDK, r2, &sm.dV[0][0], kLd, n2, 0, k_tok, lane);
      store_acc(&sm.dS[0][0], kLd, dS, r2, n2, lane);
    }
  }
  if (kTransition)  // every row of the segment's slice of [dS0 | M], the zeros past K included
    store_dS(cw.seg_state + seg_blk * KMAX * (cw.vpad + KMAX), cw.vpad + KMAX, KMAX, cw.vpad + KMAX);
  else if (first && bp.dh0 != nullptr)
    store_dS(bp.dh0 + state_base, V, K, V);
}

template <int KMAX>
struct GradSmem {
  static constexpr int LDK = KMAX + 8;
  // The next slice's S in fp32 as loaded (cp.async, one slice ahead); after the slices -dW [kC][LDK] in bf16.
  float stage[KMAX][kLd];
  bf16 S[KMAX][kLd];      // the state entering the chunk, a column slice
  bf16 dS[2][KMAX][kLd];  // the gradient wrt the state leaving it: this slice's and the next one's (after the slices
                          // dS[0] holds d(b⊙k⊙Γ) [kC][LDK])
  bf16 dO[2][kC][kLd];  // this slice's columns and the next one's
  bf16 Vn[kC][kLd];    // V' = U - W S, then dX = A^T dV'
  bf16 dV[kC][kLd];    // dV' = Kt dS + P^T dO
  bf16 W[kC][LDK];
  bf16 Kt[KMAX][kLd];  // kgT: Kt transposed, [key channel][token]
  bf16 U[2][kC][kLd];  // this slice's columns and the next one's
  bf16 A[kC][kLd];
  bf16 P[kC][kLd];
  static_assert(kC * LDK <= KMAX * kLd, "a [kC][LDK] bf16 tile fits a dS buffer (and so the fp32 stage)");
};
static_assert(sizeof(GradSmem<128>) <= 227 * 1024, "one block of the gradient kernel fits an SM");

// Warp w: rows 16 (w % 4) .. +15 of the chunk; of [kC, 64] tiles columns 16 (w / 4) .. +15, of [kC, KMAX] ones key
// channels (w / 4) KMAX/4 .. + KMAX/4. Every product is bf16 x bf16 on the tensor cores with fp32 accumulation
// (mma_smem), its fp32 operands rounded to bf16 once when stored; the decay's gradient Σ dS ⊙ S sums the fp32 states
// against dS as stored (bf16), with fp32 accumulation.
template <int KMAX>
__global__ void __launch_bounds__(kWideThreads, 1) chunk_grad64_kernel(Gdn2Bwd64Params bp) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  using Smem = GradSmem<KMAX>;
  constexpr int LDK = Smem::LDK;
  Smem& sm = *reinterpret_cast<Smem*>(smem_raw);
  constexpr int NK = KMAX / 32;
  const Gdn2Params& p = bp.f;
  const ChunkWork& cw = p.chunk;
  const int c = blockIdx.x, hv = blockIdx.y, tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int K = p.K, V = p.V, hw = input_head(p.w, hv, p.HV, p.HV / p.H);
  const int64_t tok0 = cw.chunk_tok0[c], blk = static_cast<int64_t>(c) * p.HV + hv;
  const int L = static_cast<int>(cw.chunk_len[c]);
  const int r0 = 16 * (warp & 3), n16 = 16 * (warp >> 2), nk = (warp >> 2) * (KMAX / 4);
  // Steps of 16 over the key channels (zeros past K in every tile) and of a triangular factor from r0.
  const int k_key = (K + 15) / 16, k_tri = (kC - r0) / 16;
  const float* Sg = bp.h + blk * K * V;
  const bf16* dSg = static_cast<const bf16*>(bp.dh) + blk * K * V;
  const bf16* Ug = static_cast<const bf16*>(cw.U) + blk * kC * cw.vpad;
  // dO comes by cp.async with the slice's other tiles (dO_by_copy); otherwise through registers at the slice's start
  // (load_value_tile).
  const bool dO_async = dO_by_copy(bp);
  auto load_next = [&](int v0, int buf) {  // a slice's S, dS, U and dO, issued and committed
    load_slice(sm.stage, Sg, KMAX, K, V, v0);
    load_slice(sm.dS[buf], dSg, KMAX, K, V, v0);
    load_bf16_tile(&sm.U[buf][0][0], kLd, Ug + v0, cw.vpad, kC, kCols);
    if (dO_async) load_dO_tile(sm.dO[buf], bp, tok0, L, hv, v0);
    cp_async_commit();
  };

  load_bf16_tile(&sm.W[0][0], LDK, static_cast<const bf16*>(cw.W) + blk * kC * KMAX, KMAX, kC, KMAX);
  load_bf16_tile(&sm.Kt[0][0], kLd, static_cast<const bf16*>(cw.kgT) + blk * KMAX * kC, kC, KMAX, kC);
  load_bf16_tile(&sm.A[0][0], kLd, static_cast<const bf16*>(cw.A) + blk * kC * kC, kC, kC, kC);
  load_bf16_tile(&sm.P[0][0], kLd, static_cast<const bf16*>(cw.P) + blk * kC * kC, kC, kC, kC);
  load_next(0, 0);

  // The conversion pass: thread tid takes eight columns of row (tid + u·threads) / 8 of the stage (S, fp32, into its
  // bf16 tile); its row's eight threads sum dS ⊙ S over the slice (dgl[u], over every slice; dS as the products take
  // it, bf16).
  constexpr int kConv = KMAX * (kCols / 8) / kWideThreads;
  float aQ[NK][4], aKt[NK][4], aW[NK][4], aP[2][4], aT[2][4], dgl[kConv] = {};
  zero(aQ), zero(aKt), zero(aW), zero(aP), zero(aT);
#pragma unroll 1
  for (int v0 = 0, buf = 0; v0 < cw.vpad; v0 += kCols, buf ^= 1) {
    __syncthreads();  // the previous slice's tiles are consumed
    const bf16(*dO)[kLd] = sm.dO[buf];
    if (dO_async) {
      cp_async_wait<0>();
      __syncthreads();
    } else {
      constexpr int kIters = kC * kCols / 8 / kWideThreads;
      float o[kIters][8];  // dO, in flight during the wait
      load_value_tile<kIters, kWideThreads, kCols>(o, bp.d_o, bp.d_o_type, tok0, L, hv, p.HV, V, v0);
      cp_async_wait<0>();
      __syncthreads();
      store_value_tile<kIters, kWideThreads>(sm.dO[buf], o);
    }
#pragma unroll
    for (int u = 0; u < kConv; ++u) {
      const int it = tid + u * kWideThreads, d = it >> 3, c8 = 8 * (it & 7);
      const float4* s4 = reinterpret_cast<const float4*>(&sm.stage[d][c8]);
      const float4 s0 = s4[0], s1 = s4[1];
      const uint4 gw = *reinterpret_cast<const uint4*>(&sm.dS[buf][d][c8]);
      const float2 g0 = unpack_bf16(gw.x), g1 = unpack_bf16(gw.y), g2 = unpack_bf16(gw.z), g3 = unpack_bf16(gw.w);
      float part = s0.x * g0.x + s0.y * g0.y + s0.z * g1.x + s0.w * g1.y;
      part += s1.x * g2.x + s1.y * g2.y + s1.z * g3.x + s1.w * g3.y;
      part += __shfl_xor_sync(0xffffffffu, part, 1);
      part += __shfl_xor_sync(0xffffffffu, part, 2);
      part += __shfl_xor_sync(0xffffffffu, part, 4);
      dgl[u] += part;
      *reinterpret_cast<uint4*>(&sm.S[d][c8]) =
          make_uint4(pack2(s0.x, s0.y), pack2(s0.z, s0.w), pack2(s1.x, s1.y), pack2(s1.z, s1.w));
    }
    __syncthreads();
    if (v0 + kCols < cw.vpad) load_next(v0 + kCols, buf ^ 1);  // in flight during this slice's products
    const bf16(*U)[kLd] = sm.U[buf];
    {  // V' = U - W S, dV' = Kt dS + P^T dO (P^T upper triangular: tokens from r0 on)
      float vs[2][4], dv[2][4];
      zero(vs), zero(dv);
      mma_smem<2, false, false>(vs, &sm.W[0][0], LDK, r0, &sm.S[0][0], kLd, n16, 0, k_key, lane);
      mma_smem<2, true, false>(dv, &sm.Kt[0][0], kLd, r0, &sm.dS[buf][0][0], kLd, n16, 0, k_key, lane);
      mma_smem<2, true, false>(dv, &sm.P[0][0], kLd, r0, &dO[0][0], kLd, n16, r0, k_tri, lane);
      store_acc(&sm.Vn[0][0], kLd, vs, r0, n16, lane, [&](int r, int cc, float x) { return bf(U[r][cc]) - x; });
      store_acc(&sm.dV[0][0], kLd, dv, r0, n16, lane);
    }
    __syncthreads();
    // w and v at this thread's elements of dX (column pairs h, h + 1), in flight during the sums.
    float wg[2][2][2], vg[2][2][2];
#pragma unroll
    for (int nt = 0; nt < 2; ++nt)
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const int r = acc_row(r0, lane, 2 * e), col = acc_col(v0 + n16, lane, nt, 0);
        load_input(wg[nt][e], p.w, tok0 + r, hw, col, V, r < L, p.vec8, 1.f);
        load_input(vg[nt][e], p.v, tok0 + r, hv, col, V, r < L && bp.ow.ptr != nullptr, p.vec8, 0.f);
      }
    // Sums over the slice's columns: d(q⊙Γ) += dO S^T, -dW += dV' S^T, dKt += V' dS^T, dP += dO V'^T.
    mma_smem<NK, false, true>(aQ, &dO[0][0], kLd, r0, &sm.S[0][0], kLd, nk, 0, kCols / 16, lane);
    mma_smem<NK, false, true>(aW, &sm.dV[0][0], kLd, r0, &sm.S[0][0], kLd, nk, 0, kCols / 16, lane);
    mma_smem<NK, false, true>(aKt, &sm.Vn[0][0], kLd, r0, &sm.dS[buf][0][0], kLd, nk, 0, kCols / 16, lane);
    mma_smem<2, false, true>(aP, &dO[0][0], kLd, r0, &sm.Vn[0][0], kLd, n16, 0, kCols / 16, lane);
    float dx[2][4];  // dX = A^T dV'
    zero(dx);
    mma_smem<2, true, false>(dx, &sm.A[0][0], kLd, r0, &sm.dV[0][0], kLd, n16, r0, k_tri, lane);
    __syncthreads();  // V' is read
    store_acc(&sm.Vn[0][0], kLd, dx, r0, n16, lane);
#pragma unroll
    for (int nt = 0; nt < 2; ++nt)
#pragma unroll
      for (int e = 0; e < 2; ++e) {  // elements 2e, 2e + 1: one row, two columns
        const int r = acc_row(r0, lane, 2 * e), col = v0 + acc_col(n16, lane, nt, 0);
        if (r < L) {  // U = A (w⊙v): d(w⊙v) = dX
          const int64_t at = ((tok0 + r) * p.HV + hv) * static_cast<int64_t>(V) + col;
          const float x0 = dx[nt][2 * e], x1 = dx[nt][2 * e + 1];
          store_pair(bp.ov.ptr, bp.ov.type, at, col, V, x0 * wg[nt][e][0], x1 * wg[nt][e][1]);
          if (bp.ow.ptr != nullptr) store_pair(bp.ow.ptr, bp.ow.type, at, col, V, x0 * vg[nt][e][0], x1 * vg[nt][e][1]);
        }
      }
    __syncthreads();
    mma_smem<2, false, true>(aT, &sm.Vn[0][0], kLd, r0, &U[0][0], kLd, n16, 0, kCols / 16, lane);  // dX U^T
  }
  __syncthreads();  // every slice is done with the stage

  bf16(*dWn)[LDK] = reinterpret_cast<bf16(*)[LDK]>(&sm.stage[0][0]);  // -dW
  bf16(*dBK)[LDK] = reinterpret_cast<bf16(*)[LDK]>(&sm.dS[0][0][0]);
  store_acc(&dWn[0][0], LDK, aW, r0, nk, lane);
#pragma unroll
  for (int nt = 0; nt < NK; ++nt)
#pragma unroll
    for (int e = 0; e < 2; ++e) {
      const int r = acc_row(r0, lane, 2 * e), d = acc_col(nk, lane, nt, 0);
      if (r < L) {
        const int64_t at = ((tok0 + r) * p.HV + hv) * static_cast<int64_t>(K) + d;
        store_pair(bp.gq, ElemType::f32, at, d, K, aQ[nt][2 * e], aQ[nt][2 * e + 1]);
        store_pair(bp.gk, ElemType::f32, at, d, K, aKt[nt][2 * e], aKt[nt][2 * e + 1]);
      }
    }
#pragma unroll
  for (int u = 0; u < kConv; ++u)
    if ((tid & 7) == 0) bp.dgl[blk * KMAX + ((tid + u * kWideThreads) >> 3)] = dgl[u];
  __syncthreads();
  {  // d(b⊙k⊙Γ) = A^T dW = -A^T (-dW)
    float x[NK][4];
    zero(x);
    mma_smem<NK, true, false>(x, &sm.A[0][0], kLd, r0, &dWn[0][0], LDK, nk, r0, k_tri, lane);
    store_acc(&dBK[0][0], LDK, x, r0, nk, lane, [](int, int, float v) { return -v; });
    if (bp.gb != nullptr)
#pragma unroll
      for (int nt = 0; nt < NK; ++nt)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const int r = acc_row(r0, lane, 2 * e), d = acc_col(nk, lane, nt, 0);
          if (r < L)
            store_pair(bp.gb, ElemType::f32, ((tok0 + r) * p.HV + hv) * static_cast<int64_t>(K) + d, d, K,
                       -x[nt][2 * e], -x[nt][2 * e + 1]);
        }
  }
  __syncthreads();
  // dT = -(dX U^T + d(b⊙k⊙Γ) W^T), strictly below the diagonal; s·dP on and below it (the scale the pair kernel's
  // products with dP take).
  mma_smem<2, false, true>(aT, &dBK[0][0], LDK, r0, &sm.W[0][0], LDK, n16, 0, k_key, lane);
  float* out = bp.dpt + blk * 2 * kC * kC;
#pragma unroll
  for (int nt = 0; nt < 2; ++nt)
#pragma unroll
    for (int e = 0; e < 2; ++e) {  // columns j, j + 1 of row r as one 8-byte store
      const int r = acc_row(r0, lane, 2 * e), j = acc_col(n16, lane, nt, 0);
      const bool row = r < L;
      *reinterpret_cast<float2*>(out + r * kC + j) =
          make_float2(row && j <= r ? p.scale * aP[nt][2 * e] : 0.f,
                      row && j + 1 <= r ? p.scale * aP[nt][2 * e + 1] : 0.f);
      *reinterpret_cast<float2*>(out + kC * kC + r * kC + j) =
          make_float2(row && j < r ? -aT[nt][2 * e] : 0.f, row && j + 1 < r ? -aT[nt][2 * e + 1] : 0.f);
    }
}

// The pair kernel runs as clusters of two blocks per (chunk, value head), each block taking half of the key channels:
// the pair sums and the chain rule are channel by channel, and only the rows' norms and the L2 norm backward's dot
// products span both halves (exchanged through the cluster's shared memory). Two such blocks fit an SM.
template <int KMAX>
struct PairSmem {
  static constexpr int KH = KMAX / 2;  // this block's key channels
  static constexpr int LDK = KH + 8, LDX = KH + 8;
  float q[kC][LDK];   // q̂; at the end Kt ⊙ dKt
  float k[kC][LDK];   // k̂
  float b[kC][LDK];   // b; after the pair sums the gradient wrt b
  float G[kC][LDK];   // inclusive cumsum of g (natural log); rows past the chunk repeat G_last
  float dP[kC][kLd], dT[kC][kLd];  // after the pair sums: the dg terms [kC][LDX] across both
  float gl[KH];
  float rq[kC], rk[kC];
  float sq[2][kC];      // the rows' sums of squares of q and k over this block's channels (read by the other block)
  float dot[2][2][kC];  // per warp column (half of this block's channels): the rows' partial sums q̂·dq̂ and k̂·dk̂
                        // (L2 norm backward)
  float dsum[2][kC];    // those sums over this block's channels (read by the other block)
  int wide[4];          // per 16-row block: its span exceeds kSpan
  static_assert(kC * LDX <= 2 * kC * kLd, "the dg terms fit the space of dP and dT");
};
static_assert(2 * (sizeof(PairSmem<128>) + 1024) <= 228 * 1024, "two blocks of the pair kernel fit an SM");

template <int KMAX>
__global__ void __cluster_dims__(2, 1, 1) __launch_bounds__(kThreads, 2) chunk_pair64_kernel(Gdn2Bwd64Params bp) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  using Smem = PairSmem<KMAX>;
  constexpr int KH = Smem::KH, NK = KH / 16;
  Smem& sm = *reinterpret_cast<Smem*>(smem_raw);
  cg::cluster_group cluster = cg::this_cluster();
  const Gdn2Params& p = bp.f;
  const ChunkWork& cw = p.chunk;
  const int c = blockIdx.x >> 1, half = static_cast<int>(cluster.block_rank()), hv = blockIdx.y;
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int K = p.K, d_lo = half * KH;  // this block's channels: d_lo + [0, KH), those below K real
  const int64_t tok0 = cw.chunk_tok0[c], blk = static_cast<int64_t>(c) * p.HV + hv;
  const int L = static_cast<int>(cw.chunk_len[c]);
  const float s = p.scale;
  Smem& peer = *cluster.map_shared_rank(&sm, half ^ 1);

  {  // dP and dT by cp.async while the inputs load
    const float* src = bp.dpt + blk * 2 * kC * kC;
    for (int it = tid; it < kC * kC / 4; it += kThreads) {
      const int r = it / (kC / 4), c4 = 4 * (it % (kC / 4));
      cp_async_16(&sm.dP[r][c4], src + r * kC + c4);
      cp_async_16(&sm.dT[r][c4], src + kC * kC + r * kC + c4);
    }
    cp_async_commit();
  }
  // The gradient kernel's d(q⊙Γ), dKt and d(b⊙k⊙Γ) at this block's rows and channels, which the chain rule reads
  // after the products: into L2 now (32 floats a line).
  for (int it = tid; it < 3 * L * (KH / 32); it += kThreads) {
    const int x = it % 3, line = it / 3, i = line / (KH / 32), d = d_lo + 32 * (line % (KH / 32));
    const float* g = x == 0 ? bp.gq : x == 1 ? bp.gk : bp.gb;
    if (g != nullptr && d < K) prefetch_l2(g + ((tok0 + i) * p.HV + hv) * static_cast<int64_t>(K) + d);
  }
  chunk_rows<kC, KH, kThreads, Smem::LDK, true>(p, tok0, L, hv, sm.q, sm.k, sm.G, sm.b, sm.sq[0], sm.sq[1], sm.gl,
                                                d_lo);
  cluster.sync();  // both blocks' sums of squares are in place
  if (tid < kC) {
    const int t = tid;
    sm.rq[t] = p.l2norm ? rsqrtf(sm.sq[0][t] + peer.sq[0][t] + 1e-6f) : 1.f;
    sm.rk[t] = p.l2norm ? rsqrtf(sm.sq[1][t] + peer.sq[1][t] + 1e-6f) : 1.f;
  }
  if (warp >= 4) {  // the span of 16-row block R = warp - 4 over this block's channels, from the row before it (G = 0
                    // before the chunk)
    const int r0 = 16 * (warp - 4);
    float span = 0.f;
    for (int d = lane; d < KH; d += 32) span = fmaxf(span, (r0 > 0 ? sm.G[r0 - 1][d] : 0.f) - sm.G[r0 + 15][d]);
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) span = fmaxf(span, __shfl_xor_sync(0xffffffffu, span, o));
    if (lane == 0) sm.wide[warp - 4] = !(span < kSpan);  // a NaN span too
  }
  __syncthreads();
  // q̂ and k̂; G and G_last from here on in log2 units, so that every exponential below is one ex2.
  for (int idx = tid; idx < kC * KH; idx += kThreads) {
    const int t = idx / KH, d = idx % KH;
    sm.q[t][d] *= sm.rq[t];
    sm.k[t][d] *= sm.rk[t];
    sm.G[t][d] *= kLog2e;
    if (t == 0) sm.gl[d] *= kLog2e;
  }
  cp_async_wait<0>();
  __syncthreads();

  // Warp w: rows 16 R .. +15 (R = w % 4), this block's channels nk .. + KH/2. Anchors: a = 16 R - 1 for the sums over
  // j <= i (G_a = 0 for R = 0), b = 16 R + 15 for the sums over i >= j. A wide block keeps its own 16x16 pairs out of
  // the products and sums them pair by pair below. Every loop over a thread's elements is unrolled over the registers
  // and kept short: the code streams from the instruction cache. dP arrives scaled by s (the gradient kernel), so aq
  // below is the sum wrt q̂ itself.
  const int R = warp & 3, r0 = 16 * R, nk = (warp >> 2) * (KH / 2);
  const bool wide = sm.wide[R];
  const float* Gb = sm.G[r0 + 15];
  auto Ga = [&](int d) { return r0 > 0 ? sm.G[r0 - 1][d] : 0.f; };
  float aq[NK][4], ab[NK][4], ak[NK][4];  // the pair sums wrt q̂, b⊙k̂ and k̂
  zero(aq), zero(ab), zero(ak);
  {
    const int diag = wide ? 0 : 2;  // k-steps of the block's own 16 tokens in the products
    mma1_rows2(aq, ab, [&](int r, int j) { return sm.dP[r][j]; }, [&](int r, int j) { return sm.dT[r][j]; },
               [&](int j, int d) { return sm.k[j][d] * ex2(Ga(d) - sm.G[j][d]); }, r0, nk, 0, r0 / 8 + diag, lane);
    const int i0 = wide ? r0 + 16 : r0;
    mma1_rows_sum2(
        ak, [&](int j, int i) { return sm.dP[i][j]; }, [&](int j, int i) { return sm.dT[i][j]; },
        [&](int i, int d) {
          const float e = ex2(sm.G[i][d] - Gb[d]), ke = sm.k[i][d] * e;
          return make_float2(sm.q[i][d] * e, sm.b[i][d] * ke);
        },
        r0, nk, i0, (kC - i0) / 8, lane);
  }
#pragma unroll
  for (int nt = 0; nt < NK; ++nt)
#pragma unroll
    for (int h = 0; h < 4; ++h) {
      const int i = acc_row(r0, lane, h), d = acc_col(nk, lane, nt, h);
      const float gi = sm.G[i][d], e = ex2(gi - Ga(d));
      aq[nt][h] *= e, ab[nt][h] *= e, ak[nt][h] *= ex2(Gb[d] - gi);
    }
  if (wide) {  // the block's own pairs one by one: e^{-|G_i - G_j|}, with dP lower and dT strictly lower triangular
    const int g8 = lane >> 2;
#pragma unroll 1
    for (int j = r0; j < r0 + 16; ++j) {
      float pij[2], tij[2], pji[2], tji[2];
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const int i = r0 + g8 + 8 * e;
        pij[e] = sm.dP[i][j], tij[e] = sm.dT[i][j], pji[e] = sm.dP[j][i], tji[e] = sm.dT[j][i];
      }
#pragma unroll
      for (int nt = 0; nt < NK; ++nt)
#pragma unroll
        for (int h = 0; h < 4; ++h) {
          const int i = acc_row(r0, lane, h), d = acc_col(nk, lane, nt, h), e = h >> 1;
          const float x = ex2(-fabsf(sm.G[i][d] - sm.G[j][d])), kj = sm.k[j][d] * x;
          aq[nt][h] += pij[e] * kj;
          ab[nt][h] += tij[e] * kj;
          ak[nt][h] += (pji[e] * sm.q[j][d] + tji[e] * sm.b[j][d] * sm.k[j][d]) * x;
        }
    }
  }
  __syncthreads();  // the products have read every row of q̂, k̂, b; below a thread writes its own elements only

  // The chain rule per element (row i, channel d): aq becomes dq̂ (before the norm), ab dk̂, ak the element's dg term,
  // kt Kt ⊙ dKt; the gradient wrt b goes to the element's place in b.
  // d(q⊙Γ), dKt and d(b⊙k⊙Γ) from the gradient kernel: the next n-tile's loads are issued before this one's
  // shared-memory stores (which a load could not pass).
  float kt[NK][4], dq_dot[2] = {0.f, 0.f}, dk_dot[2] = {0.f, 0.f}, in[3][4];
  auto load_in = [&](int nt) {
#pragma unroll
    for (int e = 0; e < 2; ++e) {  // elements 2e, 2e + 1: one row, two channels
      const int i = acc_row(r0, lane, 2 * e), d = d_lo + acc_col(nk, lane, nt, 0);
      const int64_t at = ((tok0 + i) * p.HV + hv) * static_cast<int64_t>(K) + d;
      const int cols = i < L ? K : 0;  // nothing past the chunk
      load_pair(bp.gq, at, d, cols, in[0][2 * e], in[0][2 * e + 1]);
      load_pair(bp.gk, at, d, cols, in[1][2 * e], in[1][2 * e + 1]);
      if (bp.gb != nullptr)
        load_pair(bp.gb, at, d, cols, in[2][2 * e], in[2][2 * e + 1]);
      else
        in[2][2 * e] = in[2][2 * e + 1] = 0.f;
    }
  };
  load_in(0);
#pragma unroll
  for (int nt = 0; nt < NK; ++nt) {
    float cur[3][4];
#pragma unroll
    for (int h = 0; h < 4; ++h) cur[0][h] = in[0][h], cur[1][h] = in[1][h], cur[2][h] = in[2][h];
    if (nt + 1 < NK) load_in(nt + 1);
#pragma unroll
    for (int h = 0; h < 4; ++h) {
      const int i = acc_row(r0, lane, h), d = acc_col(nk, lane, nt, h);
      float gq = 0.f, gk = 0.f, dg = 0.f, ktd = 0.f, gb = 0.f;
      if (i < L && d_lo + d < K) {
        const float gi = sm.G[i][d], gam = ex2(gi), rev = ex2(sm.gl[d] - gi);
        const float qh = sm.q[i][d], kh = sm.k[i][d], bgate = sm.b[i][d], bkv = bgate * kh;
        const float dqg = cur[0][h], dKt = cur[1][h], dbkg = cur[2][h];
        const float dbk = dbkg * gam + ab[nt][h];
        gq = s * dqg * gam + aq[nt][h];
        dg = qh * gq + bkv * dbk - kh * ak[nt][h];
        gk = dKt * rev + ak[nt][h] + dbk * bgate;
        ktd = dKt * kh * rev;
        gb = dbk * kh;
        dq_dot[h >> 1] += qh * gq;
        dk_dot[h >> 1] += kh * gk;
      }
      sm.b[i][d] = gb;
      aq[nt][h] = gq, ab[nt][h] = gk, ak[nt][h] = dg, kt[nt][h] = ktd;
    }
  }
  const int quarter = warp >> 2, g8 = lane >> 2;
#pragma unroll
  for (int e = 0; e < 2; ++e) {  // a row's channels: 4 lanes of this warp and the other quarter's warp
#pragma unroll
    for (int o = 1; o < 4; o <<= 1) {
      dq_dot[e] += __shfl_xor_sync(0xffffffffu, dq_dot[e], o);
      dk_dot[e] += __shfl_xor_sync(0xffffffffu, dk_dot[e], o);
    }
    if ((lane & 3) == 0)
      sm.dot[quarter][0][r0 + g8 + 8 * e] = dq_dot[e], sm.dot[quarter][1][r0 + g8 + 8 * e] = dk_dot[e];
  }
  __syncthreads();  // every pair sum has read dP and dT; this block's row sums are complete
  if (tid < 2 * kC) {
    const int w = tid / kC, t = tid % kC;
    sm.dsum[w][t] = sm.dot[0][w][t] + sm.dot[1][w][t];
  }
  cluster.sync();  // both blocks' halves of the row sums are in place
  float qd[2], kd[2];  // the whole row sums at this thread's two rows
#pragma unroll
  for (int e = 0; e < 2; ++e) {
    const int i = r0 + g8 + 8 * e;
    qd[e] = sm.dsum[0][i] + peer.dsum[0][i];
    kd[e] = sm.dsum[1][i] + peer.dsum[1][i];
  }
  float(*DG)[Smem::LDX] = reinterpret_cast<float(*)[Smem::LDX]>(&sm.dP[0][0]);
#pragma unroll
  for (int nt = 0; nt < NK; ++nt)
#pragma unroll
    for (int e = 0; e < 2; ++e) {  // elements 2e, 2e + 1: row i, channels d and d + 1
      const int i = acc_row(r0, lane, 2 * e), d = acc_col(nk, lane, nt, 0);
      float gq[2], gk[2];
#pragma unroll
      for (int x = 0; x < 2; ++x) {
        const int h = 2 * e + x;
        DG[i][d + x] = ak[nt][h];
        gq[x] = aq[nt][h], gk[x] = ab[nt][h];
        if (p.l2norm) {  // dx = rstd (dy - ŷ (ŷ·dy))
          gq[x] = sm.rq[i] * (gq[x] - sm.q[i][d + x] * qd[e]);
          gk[x] = sm.rk[i] * (gk[x] - sm.k[i][d + x] * kd[e]);
        }
        sm.q[i][d + x] = kt[nt][h];  // Kt ⊙ dKt, in the element's own place
      }
      if (i >= L) continue;
      const int64_t at = ((tok0 + i) * p.HV + hv) * static_cast<int64_t>(K) + d_lo + d;
      store_pair(bp.oq.ptr, bp.oq.type, at, d_lo + d, K, gq[0], gq[1]);
      store_pair(bp.ok.ptr, bp.ok.type, at, d_lo + d, K, gk[0], gk[1]);
      if (bp.gb != nullptr) store_pair(bp.ob.ptr, bp.ob.type, at, d_lo + d, K, sm.b[i][d], sm.b[i][d + 1]);
    }
  cluster.sync();  // the other block has read this one's row sums (and this block's tiles are complete)
  // g enters through G = cumsum g and G_last: dg_t = dG_last + Σ_{r>=t} dG_r, plus the exclusive prefix
  // Σ_{r<t} Kt_r ⊙ dKt_r (the Kt = k̂ e^{G_last - G} terms, entered without cancellation). A channel's rows in kParts
  // runs of kRun, a thread each: the runs' two sums (in k̂'s place, no longer read), then each run's scans from its
  // offsets.
  if (bp.gg == nullptr) return;
  constexpr int kParts = kThreads / KH, kRun = kC / kParts;
  const int d = tid % KH, part = tid / KH, t0 = part * kRun, t1 = min(t0 + kRun, L);
  float(*run_sums)[KH] = reinterpret_cast<float(*)[KH]>(&sm.k[0][0]);  // [2 kParts][KH]: Σ dG_r, Σ Kt_r ⊙ dKt_r
  {
    float sg = 0.f, sk = 0.f;
    for (int t = t0; t < t1; ++t) sg += DG[t][d], sk += sm.q[t][d];
    run_sums[part][d] = sg, run_sums[kParts + part][d] = sk;
  }
  __syncthreads();
  if (d_lo + d >= K) return;
  float running = bp.dgl[blk * KMAX + d_lo + d] * ex2(sm.gl[d]), prefix = 0.f;
  for (int x = part + 1; x < kParts; ++x) running += run_sums[x][d];
  for (int x = 0; x < part; ++x) prefix += run_sums[kParts + x][d];
  for (int t = t1 - 1; t >= t0; --t) {
    running += DG[t][d];
    DG[t][d] = running;
  }
  for (int t = t0; t < t1; ++t) {
    bp.gg[((tok0 + t) * p.HV + hv) * static_cast<int64_t>(K) + d_lo + d] = DG[t][d] + prefix;
    prefix += sm.q[t][d];
  }
}

template <int KMAX>
void launch(const Gdn2Bwd64Params& bp) {
  const dim3 grid(bp.f.chunk.chunks, bp.f.HV);
  launch_with_smem(chunk_grad64_kernel<KMAX>, grid, kWideThreads, sizeof(GradSmem<KMAX>), bp.f.stream, bp);
  launch_with_smem(chunk_pair64_kernel<KMAX>, dim3(2 * bp.f.chunk.chunks, bp.f.HV), kThreads, sizeof(PairSmem<KMAX>),
                   bp.f.stream, bp);
}

template <int KMAX>
void launch_states(const Gdn2Bwd64Params& bp) {
  const Gdn2Params& p = bp.f;
  const ChunkWork& cw = p.chunk;
  const size_t smem = sizeof(DstateSmem<KMAX>);
  if (cw.seg_state != nullptr) {
    launch_with_smem(chunk_dstate64_kernel<KMAX, true>, dim3((cw.vpad + KMAX) / kCols, p.HV, cw.segs), kThreads, smem,
                     p.stream, bp);
    SegmentScan scan;  // in reverse: the gradient entering each segment from its right, from dht
    scan.seq_seg0 = cw.seq_seg0, scan.seg_state = cw.seg_state, scan.out = cw.seg_h0, scan.init = bp.dht;
    scan.N = p.N, scan.HV = p.HV, scan.K = p.K, scan.V = p.V, scan.vpad = cw.vpad;
    launch_segment_scan<KMAX, true>(scan, p.stream);
  }
  launch_with_smem(chunk_dstate64_kernel<KMAX, false>, dim3(cw.vpad / kCols, p.HV, cw.segs), kThreads, smem, p.stream,
                   bp);
}

}  // namespace

void launch_chunk_bwd64_states(const Gdn2Bwd64Params& bp) {
  if (bp.f.N == 0) return;
  with_kmax(bp.f.chunk.kmax, [&](auto kmax) { launch_states<decltype(kmax)::value>(bp); });
}

void launch_chunk_bwd64(const Gdn2Bwd64Params& bp) {
  if (bp.f.N == 0 || bp.f.chunk.chunks == 0) return;
  with_kmax(bp.f.chunk.kmax, [&](auto kmax) { launch<decltype(kmax)::value>(bp); });
}

}  // namespace gdn2::cuda
