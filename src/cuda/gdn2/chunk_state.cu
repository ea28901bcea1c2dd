// Tensor-core chunk path, part 2 (sequential over chunks): one block per (64 columns of V, value head, segment of a
// sequence; params.h, ChunkWork) carries its slice of the fp32 state through the segment's chunks in registers,
// reading what chunk_intra.cu wrote, the next chunk's tiles arriving by cp.async while the current one is computed:
//   V' = U - W S,   O = qg S + P V',   S <- Diag(gamma) S + kgT V'.
// Eight warps: warp w owns rows 16·(w%4) .. +15 of the chunk and 32 columns (half w/4) for V' and O, and for the
// state 16 columns of V and half the key channels: S^T in mma accumulator layout, so its bf16 copy for the next
// products is one packed store per register pair.
#include "cuda/common.cuh"
#include "cuda/gdn2/kernels.h"
#include "cuda/gdn2/load.cuh"
#include "cuda/gdn2/chunk_stage.cuh"
#include "cuda/gdn2/mma.cuh"
#include "cuda/gdn2/segment_scan.cuh"

namespace gdn2::cuda {

namespace {

constexpr int kC = 64, kCols = 64, kThreads = 256, kLdC = kC + 8;

template <int KMAX>
struct StateSmem {
  Stage<KMAX> st[2];
  bf16 St[kCols][KMAX + 8];  // S^T in bf16: [column of V][key channel]
  bf16 VT[kCols][kLdC];      // V'^T: [column of V][token]
};

// One block per (64 columns, value head, segment). kTransition: the context-parallel first pass over every segment but
// its sequence's last (params.h, ChunkWork): from a zero state, columns past vpad are the transition's (identity at
// entry, U = 0), no output; [S0 | M] goes to seg_state. Otherwise the state pass proper: o, per-chunk states, ht.
template <int KMAX, bool kTransition>
__global__ void __launch_bounds__(kThreads, 1) chunk_state_kernel(Gdn2Params p) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  StateSmem<KMAX>& sm = *reinterpret_cast<StateSmem<KMAX>*>(smem_raw);
  constexpr int LDK = KMAX + 8, NT = KMAX / 16;  // key-channel n-tiles of this warp's half
  const ChunkWork& cw = p.chunk;
  const int col0 = blockIdx.x * kCols, hv = blockIdx.y, seg = blockIdx.z;
  const int tid = threadIdx.x, lane = tid & 31, g = lane >> 2, t4 = lane & 3;
  const int warp = (tid >> 5) & 3, half = tid >> 7;  // row block, and half of the columns / key channels
  const int ch0 = half * (KMAX / 2), vc0 = half * 32;
  const int K = p.K, V = p.V;
  const auto [n, c_begin, c_end, first, last] = segment_of(cw.seg_seq, cw.seg_chunk0, cw.seq_chunk0, seg);
  if (kTransition && last) return;
  const bool trans = kTransition && col0 >= cw.vpad;  // transition columns: U = 0
  const int64_t state_base = (static_cast<int64_t>(n) * p.HV + hv) * K * V;
  const int64_t seg_blk = static_cast<int64_t>(seg) * p.HV + hv;

  // S^T: this warp's columns 16·warp + g (+8) of the slice, key channels ch0 + 8·nt + 2·t4 (+1).
  float s[NT][4];
#pragma unroll
  for (int nt = 0; nt < NT; ++nt) {
#pragma unroll
    for (int h = 0; h < 4; ++h) {
      const int cl = 16 * warp + g + (h >> 1) * 8, col = col0 + cl, ch = ch0 + 8 * nt + 2 * t4 + (h & 1);
      if (kTransition)
        s[nt][h] = trans && ch < K && ch == col - cw.vpad ? 1.f : 0.f;
      else if (!first)
        s[nt][h] = cw.seg_h0[(seg_blk * KMAX + ch) * cw.vpad + col];
      else
        s[nt][h] = (p.h0 != nullptr && ch < K && col < V)
                       ? load_elem(p.h0, p.state_type, state_base + static_cast<int64_t>(ch) * V + col)
                       : 0.f;
    }
  }
  auto store_st = [&] {
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) {
      *reinterpret_cast<uint32_t*>(&sm.St[16 * warp + g][ch0 + 8 * nt + 2 * t4]) = pack2(s[nt][0], s[nt][1]);
      *reinterpret_cast<uint32_t*>(&sm.St[16 * warp + g + 8][ch0 + 8 * nt + 2 * t4]) = pack2(s[nt][2], s[nt][3]);
    }
  };
  // The fp32 state to [rows][ld] at column offset col0 (per-chunk states, ht, the transition pass's result).
  auto store_state = [&](float* base, int64_t ld, int rows, int cols) {
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) {
#pragma unroll
      for (int h = 0; h < 4; ++h) {
        const int col = col0 + 16 * warp + g + (h >> 1) * 8, ch = ch0 + 8 * nt + 2 * t4 + (h & 1);
        if (ch < rows && col < cols) base[static_cast<int64_t>(ch) * ld + col] = s[nt][h];
      }
    }
  };
  store_st();

  const int64_t hv_blocks = p.HV;
  if (c_begin < c_end) stage_load(sm.st[0], cw, c_begin * hv_blocks + hv, col0, !trans);
  cp_async_commit();
  for (int c = c_begin; c < c_end; ++c) {
    const int cur = (c - c_begin) & 1;
    if (c + 1 < c_end) stage_load(sm.st[cur ^ 1], cw, (c + 1) * hv_blocks + hv, col0, !trans);
    cp_async_commit();
    if (!kTransition && p.h_chunks != nullptr)
      store_state(p.h_chunks + (static_cast<int64_t>(c) * p.HV + hv) * K * V, V, K, V);
    cp_async_wait<1>();
    __syncthreads();  // chunk c's tiles and the state's bf16 copy are in place
    const Stage<KMAX>& st = sm.st[cur];

    // V' = U - W S for rows 16·warp .. +15 and this half's 32 columns, then V'^T to shared memory.
    {
      float va[4][4];
      zero(va);
      mma_rows(va, &st.W[0][0], LDK, 16 * warp, &sm.St[0][0], LDK, vc0, KMAX / 16, lane);
#pragma unroll
      for (int nt = 0; nt < 4; ++nt) {
#pragma unroll
        for (int h = 0; h < 4; ++h) {
          const int i = 16 * warp + g + (h >> 1) * 8, cc = vc0 + 8 * nt + 2 * t4 + (h & 1);
          const float u = trans ? 0.f : __bfloat162float(st.U[i][cc]);
          sm.VT[cc][i] = __float2bfloat16_rn(u - va[nt][h]);
        }
      }
    }
    __syncthreads();

    // O = qg S + P V' for rows 16·warp .. +15 (P is lower triangular: column blocks 0..warp); skipped when only the
    // states are wanted (p.o null: the backward's recompute).
    if (!kTransition && p.o != nullptr) {
      float oa[4][4];
      zero(oa);
      mma_rows(oa, &st.qg[0][0], LDK, 16 * warp, &sm.St[0][0], LDK, vc0, KMAX / 16, lane);
      mma_rows(oa, &st.P[0][0], kLdC, 16 * warp, &sm.VT[0][0], kLdC, vc0, warp + 1, lane);
      const int64_t tok0 = cw.chunk_tok0[c];
      const int L = static_cast<int>(cw.chunk_len[c]);
#pragma unroll
      for (int nt = 0; nt < 4; ++nt) {
#pragma unroll
        for (int h = 0; h < 4; ++h) {
          const int i = 16 * warp + g + (h >> 1) * 8, col = col0 + vc0 + 8 * nt + 2 * t4 + (h & 1);
          if (i < L && col < V) store_elem(p.o, p.o_type, ((tok0 + i) * p.HV + hv) * V + col, oa[nt][h]);
        }
      }
    }

    // S^T <- S^T Diag(gamma) + V'^T kg.
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) {
      const float g0 = st.gamma[ch0 + 8 * nt + 2 * t4], g1 = st.gamma[ch0 + 8 * nt + 2 * t4 + 1];
      s[nt][0] *= g0, s[nt][1] *= g1, s[nt][2] *= g0, s[nt][3] *= g1;
    }
    mma_rows(s, &sm.VT[0][0], kLdC, 16 * warp, &st.kgT[0][0], kLdC, ch0, kC / 16, lane);
    __syncthreads();  // every warp is done with S's bf16 copy, V'^T and this stage
    store_st();
  }
  cp_async_wait<0>();
  if (kTransition) {
    const int ld = cw.vpad + KMAX;
    store_state(cw.seg_state + seg_blk * KMAX * ld, ld, KMAX, ld);
  } else if (last && p.ht != nullptr) {
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) {
#pragma unroll
      for (int h = 0; h < 4; ++h) {
        const int col = col0 + 16 * warp + g + (h >> 1) * 8, ch = ch0 + 8 * nt + 2 * t4 + (h & 1);
        if (ch < K && col < V) store_elem(p.ht, p.state_type, state_base + static_cast<int64_t>(ch) * V + col, s[nt][h]);
      }
    }
  }
}

template <int KMAX>
void launch(const Gdn2Params& p) {
  const ChunkWork& cw = p.chunk;
  const size_t smem = sizeof(StateSmem<KMAX>);
  if (cw.seg_state != nullptr) {
    launch_with_smem(chunk_state_kernel<KMAX, true>, dim3((cw.vpad + KMAX) / kCols, p.HV, cw.segs), kThreads, smem,
                     p.stream, p);
    SegmentScan scan;  // the chunk forward's h0 is fp32 (src/cuda/gdn2_ops.cu)
    scan.seq_seg0 = cw.seq_seg0, scan.seg_state = cw.seg_state, scan.out = cw.seg_h0;
    scan.init = static_cast<const float*>(p.h0);
    scan.N = p.N, scan.HV = p.HV, scan.K = p.K, scan.V = p.V, scan.vpad = cw.vpad;
    launch_segment_scan<KMAX, false>(scan, p.stream);
  }
  launch_with_smem(chunk_state_kernel<KMAX, false>, dim3(cw.vpad / kCols, p.HV, cw.segs), kThreads, smem, p.stream, p);
}

}  // namespace

void launch_chunk_state(const Gdn2Params& p) {
  if (p.N == 0) return;
  with_kmax(p.chunk.kmax, [&](auto kmax) { launch<decltype(kmax)::value>(p); });
}

}  // namespace gdn2::cuda
