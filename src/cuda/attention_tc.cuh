// Device pieces of the tensor-core attention kernels (attention_fwd.cu, attention_bwd_dq.cu, attention_bwd_dkdv.cu):
// the causal/window visibility tests, products of whole tiles from padded shared-memory tiles, and tile copies by
// cp.async (the mma.sync and ldmatrix pieces are gdn2/mma.cuh's, shared with the GDN-2 chunk kernels).
//
// Fragment layout (PTX ISA, m16n8k16), lane = 4 g + t: A (16 x 16, row-major) a0 = (g, 2t..2t+1), a1 = (g+8, 2t..),
// a2 = (g, 2t+8..), a3 = (g+8, 2t+8..); B (16 x 8, k x n) b0 = (k 2t..2t+1, n g), b1 = (k 2t+8.., n g); C (16 x 8)
// c0, c1 = (g, 2t..2t+1), c2, c3 = (g+8, 2t..2t+1). Two 16-bit values share a register, the lower column in the low
// half. Tiles are stored with a row stride of D + 8 elements (a multiple of 8 plus 8), which puts the 8 rows x 16
// bytes of every ldmatrix phase in 32 different banks.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <type_traits>

#include "cuda/gdn2/mma.cuh"  // mma16816, ldsm_a, ldsm_b_nk, ldsm_b_kn, cp_async_16, cp_async_commit, cp_async_wait

namespace gdn2::cuda::attn {

// Whether query position p sees key j (include/gdn2/ops/attention.h): j <= p and, with a window W > 0, j > p - W.
__device__ __forceinline__ bool key_visible(int64_t p, int64_t j, int64_t W) { return j <= p && (W == 0 || j > p - W); }
// Whether some position of [p0, p1] sees some key of [j0, j1]: the keys seen from [p0, p1] are [p0 - W + 1, p1].
__device__ __forceinline__ bool span_any_visible(int64_t p0, int64_t p1, int64_t j0, int64_t j1, int64_t W) {
  return j0 <= p1 && (W == 0 || j1 > p0 - W);
}
// Whether every position of [p0, p1] sees every key of [j0, j1] (then a tile needs no mask).
__device__ __forceinline__ bool span_all_visible(int64_t p0, int64_t p1, int64_t j0, int64_t j1, int64_t W) {
  return j1 <= p0 && (W == 0 || j0 > p1 - W);
}

// Elements p[0], p[1] (p 4-byte aligned) = x, y rounded to T.
template <class T>
__device__ __forceinline__ void store2(T* p, float x, float y) {
  *reinterpret_cast<uint32_t*>(p) = pack2<T>(x, y);
}

// The A fragment of a 16 x 16 block of a product whose fp32 accumulators for the block's columns 0..7 are c0 and for
// columns 8..15 are c1 (a C tile reused as the A operand of the next product, rounded to T).
template <class T>
__device__ __forceinline__ void acc_to_a(uint32_t (&a)[4], const float (&c0)[4], const float (&c1)[4]) {
  a[0] = pack2<T>(c0[0], c0[1]);
  a[1] = pack2<T>(c0[2], c0[3]);
  a[2] = pack2<T>(c1[0], c1[1]);
  a[3] = pack2<T>(c1[2], c1[3]);
}

// acc[2 np], acc[2 np + 1] += a · B[k0..+16, 16 np..+16) for np < N / 16, B stored as tile[n][k] (ldsm_b_nk).
template <class T, int N>
__device__ __forceinline__ void mma_row_nk(float (&acc)[N / 8][4], const uint32_t (&a)[4], const T* tile, int ld,
                                           int k0, int lane) {
#pragma unroll
  for (int np = 0; np < N / 16; ++np) {
    uint32_t b[4];
    ldsm_b_nk(b, tile, ld, 16 * np, k0, lane);
    mma16816<T>(acc[2 * np], a, b[0], b[1]);
    mma16816<T>(acc[2 * np + 1], a, b[2], b[3]);
  }
}
// The same with B stored as tile[k][n] (ldsm_b_kn).
template <class T, int N>
__device__ __forceinline__ void mma_row_kn(float (&acc)[N / 8][4], const uint32_t (&a)[4], const T* tile, int ld,
                                           int k0, int lane) {
#pragma unroll
  for (int np = 0; np < N / 16; ++np) {
    uint32_t b[4];
    ldsm_b_kn(b, tile, ld, 16 * np, k0, lane);
    mma16816<T>(acc[2 * np], a, b[0], b[1]);
    mma16816<T>(acc[2 * np + 1], a, b[2], b[3]);
  }
}

// Rows row0 .. row0 + ROWS - 1 of a [rows, D] slab (row r at x + r·stride elements, 16-byte aligned) into
// tile[ROWS][LD] by 16-byte cp.async; rows outside [0, limit) are zero-filled with plain stores. The caller commits.
template <class T, int ROWS, int D, int LD, int THREADS>
__device__ __forceinline__ void load_tile_async(T* tile, const T* x, int64_t row0, int64_t limit, int64_t stride) {
  constexpr int kChunks = D / 8;  // 16-byte pieces per row
  static_assert(ROWS * kChunks % THREADS == 0, "whole rounds of pieces");
#pragma unroll
  for (int u = 0; u < ROWS * kChunks / THREADS; ++u) {
    const int c = static_cast<int>(threadIdx.x) + u * THREADS, r = c / kChunks, col = (c % kChunks) * 8;
    T* dst = tile + r * LD + col;
    const int64_t row = row0 + r;
    if (row >= 0 && row < limit)
      cp_async_16(dst, x + row * stride + col);
    else
      *reinterpret_cast<uint4*>(dst) = make_uint4(0u, 0u, 0u, 0u);
  }
}

// Max and sum over a warp's 32 lanes, in a fixed order.
__device__ __forceinline__ float warp_max(float x) {
#pragma unroll
  for (int off = 16; off > 0; off /= 2) x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, off));
  return x;
}
__device__ __forceinline__ float warp_sum(float x) {
#pragma unroll
  for (int off = 16; off > 0; off /= 2) x += __shfl_xor_sync(0xffffffffu, x, off);
  return x;
}

// Max and sum over the four lanes of a quad (the lanes holding one accumulator row).
__device__ __forceinline__ float quad_max(float x) {
  x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 1));
  return fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 2));
}
__device__ __forceinline__ float quad_sum(float x) {
  x += __shfl_xor_sync(0xffffffffu, x, 1);
  return x + __shfl_xor_sync(0xffffffffu, x, 2);
}

__host__ __device__ constexpr int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

}  // namespace gdn2::cuda::attn
