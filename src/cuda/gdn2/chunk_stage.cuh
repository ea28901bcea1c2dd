// One chunk's workspace tiles as the sequential state passes read them (chunk_state.cu forward, chunk_bwd64.cu
// backward): bf16 as chunk_intra.cu wrote them (params.h, ChunkWork), rows padded for conflict-free fragment loads,
// copied by cp.async.
#pragma once

#include "cuda/gdn2/mma.cuh"
#include "cuda/gdn2/params.h"

namespace gdn2::cuda {

constexpr int kStageChunk = 64, kStageLd = kStageChunk + 8;

template <int KMAX>
struct Stage {
  static constexpr int LDK = KMAX + 8;
  bf16 W[kStageChunk][LDK];
  bf16 qg[kStageChunk][LDK];
  bf16 kgT[KMAX][kStageLd];
  bf16 U[kStageChunk][kStageLd];  // the 64 columns from col0 (with_u)
  bf16 P[kStageChunk][kStageLd];
  float gamma[KMAX];
};

// The tiles of (chunk, value head) blk, U's columns col0.. only with_u; the copies are issued, not committed.
template <int KMAX>
__device__ __forceinline__ void stage_load(Stage<KMAX>& st, const ChunkWork& cw, int64_t blk, int col0, bool with_u) {
  constexpr int kC = kStageChunk, RK = KMAX / 8;  // 16-byte pieces in a row of KMAX bf16
  const int tid = threadIdx.x, threads = blockDim.x;
  const bf16* W = static_cast<const bf16*>(cw.W) + blk * kC * KMAX;
  const bf16* qg = static_cast<const bf16*>(cw.qg) + blk * kC * KMAX;
  const bf16* kgT = static_cast<const bf16*>(cw.kgT) + blk * KMAX * kC;
  const bf16* U = static_cast<const bf16*>(cw.U) + blk * kC * cw.vpad + col0;
  const bf16* P = static_cast<const bf16*>(cw.P) + blk * kC * kC;
  for (int idx = tid; idx < kC * RK; idx += threads) {
    const int r = idx / RK, c8 = 8 * (idx % RK);
    cp_async_16(&st.W[r][c8], W + r * KMAX + c8);
    cp_async_16(&st.qg[r][c8], qg + r * KMAX + c8);
  }
  for (int idx = tid; idx < KMAX * 8; idx += threads) {
    const int r = idx / 8, c8 = 8 * (idx % 8);
    cp_async_16(&st.kgT[r][c8], kgT + r * kC + c8);
  }
  for (int idx = tid; idx < kC * 8; idx += threads) {
    const int r = idx / 8, c8 = 8 * (idx % 8);
    if (with_u) cp_async_16(&st.U[r][c8], U + static_cast<int64_t>(r) * cw.vpad + c8);
    cp_async_16(&st.P[r][c8], P + r * kC + c8);
  }
  for (int idx = tid; idx < KMAX / 4; idx += threads) cp_async_16(&st.gamma[4 * idx], cw.gamma + blk * KMAX + 4 * idx);
}

}  // namespace gdn2::cuda
