// The general path of the CUDA attention op (any head dim up to kAttentionMaxHeadDim, F32, BF16 or F16), fp32 on
// CUDA cores: a warp per query row (forward, dq) or key row (dk, dv), the other side streamed through shared memory in
// tiles of 32 rows, online softmax, probabilities recomputed from lse in the backward. Each warp sums its own row in
// a fixed order, so the results are deterministic.
#include <algorithm>

#include "cuda/stream.h"
#include "cuda/attention.h"
#include "cuda/attention_params.h"
#include "cuda/attention_tc.cuh"  // warp_sum
#include "cuda/common.cuh"
#include "cuda/gdn2/load.cuh"

namespace gdn2::cuda {

namespace {

constexpr int kRows = 8;    // warps per block: query (or key) rows per block
constexpr int kTile = 32;   // rows of the streamed side per shared-memory tile
constexpr int kSlots = 8;   // head-dim elements per lane
static_assert(32 * kSlots == kAttentionMaxHeadDim, "a lane holds its share of the longest row");

__device__ __forceinline__ int64_t q_index(const AttnParams& a, int64_t b, int64_t i, int64_t h) {
  return ((b * a.Tq + i) * a.Hq + h) * a.D;
}
__device__ __forceinline__ int64_t k_index(const AttnParams& a, int64_t b, int64_t j, int64_t h) {
  return ((b * a.Tk + j) * a.Hkv + h) * a.D;
}

using attn::warp_sum;

// Whether query position p sees key j.
__device__ __forceinline__ bool visible(const AttnParams& a, int64_t p, int64_t j) {
  return j <= p && (a.W == 0 || j > p - a.W);
}

// Lane's slice of a row: elements lane, lane + 32, ...
__device__ __forceinline__ void load_row(float (&r)[kSlots], const void* x, ElemType t, int64_t base, int64_t D) {
  const int lane = threadIdx.x & 31;
#pragma unroll
  for (int s = 0; s < kSlots; ++s) {
    const int64_t d = lane + 32 * s;
    r[s] = d < D ? load_elem(x, t, base + d) : 0.f;
  }
}

__device__ __forceinline__ float dot_smem(const float (&r)[kSlots], const float* row, int64_t D) {
  const int lane = threadIdx.x & 31;
  float s = 0.f;
#pragma unroll
  for (int i = 0; i < kSlots; ++i) {
    const int64_t d = lane + 32 * i;
    if (d < D) s += r[i] * row[d];
  }
  return warp_sum(s);
}

// Rows r0 .. r0 + kTile − 1 (those < limit) of x at (b, row, h) into tile [kTile][D] as float; zeros past limit.
template <bool kKeys>
__device__ void load_tile(const AttnParams& a, const void* x, int64_t b, int64_t h, int64_t r0, int64_t limit,
                          float* tile) {
  for (int64_t e = threadIdx.x; e < kTile * a.D; e += blockDim.x) {
    const int64_t r = r0 + e / a.D, d = e % a.D;
    float val = 0.f;
    if (r < limit) val = load_elem(x, a.t, (kKeys ? k_index(a, b, r, h) : q_index(a, b, r, h)) + d);
    tile[e] = val;
  }
}

// Forward (dq = false) or dq (dq = true) of one query row per warp, keys streamed.
template <bool kDq>
__global__ void query_rows_kernel(AttnParams a, void* out, float* lse_out) {
  extern __shared__ float smem[];
  float* kt = smem;
  float* vt = smem + kTile * a.D;
  const int64_t b = blockIdx.z, h = blockIdx.y, hk = h / (a.Hq / a.Hkv);
  const int64_t i0 = static_cast<int64_t>(blockIdx.x) * kRows, i = i0 + threadIdx.x / 32;
  const bool active = i < a.Tq;
  const int lane = threadIdx.x & 31;
  const int64_t p = a.offset() + i;
  // Keys any row of the block sees.
  const int64_t p_first = a.offset() + i0, p_last = a.offset() + std::min<int64_t>(i0 + kRows, a.Tq) - 1;
  const int64_t lo = a.W > 0 ? std::max<int64_t>(0, p_first - a.W + 1) : 0;
  float q[kSlots], acc[kSlots] = {}, g[kSlots] = {};
  load_row(q, a.q, a.t, active ? q_index(a, b, i, h) : 0, active ? a.D : 0);
  float m = -INFINITY, l = 0.f, lse = 0.f, delta = 0.f;
  if (kDq && active) {
    load_row(g, a.d_o, a.t, q_index(a, b, i, h), a.D);
    lse = a.lse[(b * a.Hq + h) * a.Tq + i];
    delta = a.delta[(b * a.Hq + h) * a.Tq + i];
  }
  for (int64_t j0 = lo; j0 <= p_last; j0 += kTile) {
    __syncthreads();
    load_tile<true>(a, a.k, b, hk, j0, p_last + 1, kt);
    load_tile<true>(a, a.v, b, hk, j0, p_last + 1, vt);
    __syncthreads();
    if (!active) continue;
    for (int jj = 0; jj < kTile; ++jj) {
      const int64_t j = j0 + jj;
      if (j > p_last || !visible(a, p, j)) continue;
      const float s = a.scale * dot_smem(q, kt + jj * a.D, a.D);
      if (!kDq) {
        const float mn = fmaxf(m, s), corr = __expf(m - mn), e = __expf(s - mn);
        l = l * corr + e;
#pragma unroll
        for (int x = 0; x < kSlots; ++x) {
          const int64_t d = lane + 32 * x;
          acc[x] = acc[x] * corr + (d < a.D ? e * vt[jj * a.D + d] : 0.f);
        }
        m = mn;
      } else {
        const float pr = __expf(s - lse);
        const float dp = dot_smem(g, vt + jj * a.D, a.D);
        const float ds = pr * (dp - delta);
#pragma unroll
        for (int x = 0; x < kSlots; ++x) {
          const int64_t d = lane + 32 * x;
          if (d < a.D) acc[x] += ds * kt[jj * a.D + d];
        }
      }
    }
  }
  if (!active) return;
  const int64_t base = q_index(a, b, i, h);
  const float f = kDq ? a.scale : 1.f / l;
#pragma unroll
  for (int x = 0; x < kSlots; ++x) {
    const int64_t d = lane + 32 * x;
    if (d < a.D) store_elem(out, a.t, base + d, acc[x] * f);
  }
  if (!kDq && lane == 0) lse_out[(b * a.Hq + h) * a.Tq + i] = m + __logf(l);
}

// dk, dv of one key row per warp: the query rows that see it, head by head of the group, streamed.
__global__ void key_rows_kernel(AttnParams a, void* dk, void* dv) {
  extern __shared__ float smem[];
  float* qt = smem;
  float* gt = smem + kTile * a.D;
  float* lt = smem + 2 * kTile * a.D;  // lse of the tile's rows
  float* dt = lt + kTile;              // delta of the tile's rows
  const int64_t b = blockIdx.z, hk = blockIdx.y, G = a.Hq / a.Hkv;
  const int64_t j0 = static_cast<int64_t>(blockIdx.x) * kRows, j = j0 + threadIdx.x / 32;
  const bool active = j < a.Tk;
  const int lane = threadIdx.x & 31;
  const int64_t j_last = std::min<int64_t>(j0 + kRows, a.Tk) - 1;
  // Query rows (indices into q) any key of the block is seen by.
  const int64_t p_hi = a.W > 0 ? std::min<int64_t>(a.Tk - 1, j_last + a.W - 1) : a.Tk - 1;
  const int64_t i_lo = std::max<int64_t>(0, j0 - a.offset()), i_hi = p_hi - a.offset();
  float kr[kSlots], vr[kSlots], dkr[kSlots] = {}, dvr[kSlots] = {};
  load_row(kr, a.k, a.t, active ? k_index(a, b, j, hk) : 0, active ? a.D : 0);
  load_row(vr, a.v, a.t, active ? k_index(a, b, j, hk) : 0, active ? a.D : 0);
  for (int64_t g = 0; g < G; ++g) {
    const int64_t h = hk * G + g;
    for (int64_t t0 = i_lo; t0 <= i_hi; t0 += kTile) {
      __syncthreads();
      load_tile<false>(a, a.q, b, h, t0, i_hi + 1, qt);
      load_tile<false>(a, a.d_o, b, h, t0, i_hi + 1, gt);
      for (int e = threadIdx.x; e < kTile; e += blockDim.x) {
        const int64_t i = t0 + e;
        lt[e] = i <= i_hi ? a.lse[(b * a.Hq + h) * a.Tq + i] : 0.f;
        dt[e] = i <= i_hi ? a.delta[(b * a.Hq + h) * a.Tq + i] : 0.f;
      }
      __syncthreads();
      if (!active) continue;
      for (int ii = 0; ii < kTile; ++ii) {
        const int64_t i = t0 + ii;
        if (i > i_hi || !visible(a, a.offset() + i, j)) continue;
        const float s = a.scale * dot_smem(kr, qt + ii * a.D, a.D);
        const float pr = __expf(s - lt[ii]);
        const float dp = dot_smem(vr, gt + ii * a.D, a.D);
        const float ds = pr * (dp - dt[ii]);
#pragma unroll
        for (int x = 0; x < kSlots; ++x) {
          const int64_t d = lane + 32 * x;
          if (d < a.D) {
            dvr[x] += pr * gt[ii * a.D + d];
            dkr[x] += ds * qt[ii * a.D + d];
          }
        }
      }
    }
  }
  if (!active) return;
  const int64_t base = k_index(a, b, j, hk);
#pragma unroll
  for (int x = 0; x < kSlots; ++x) {
    const int64_t d = lane + 32 * x;
    if (d < a.D) {
      store_elem(dk, a.t, base + d, dkr[x] * a.scale);
      store_elem(dv, a.t, base + d, dvr[x]);
    }
  }
}

size_t tile_bytes(const AttnParams& a) { return (2 * kTile * a.D + 2 * kTile) * sizeof(float); }

dim3 rows_grid(int64_t rows, int64_t heads, int64_t batches) {
  return dim3(static_cast<unsigned>((rows + kRows - 1) / kRows), static_cast<unsigned>(heads),
              static_cast<unsigned>(batches));
}

}  // namespace

void attention_rows_forward(const AttnParams& a, void* o, float* lse) {
  launch_with_smem(query_rows_kernel<false>, rows_grid(a.Tq, a.Hq, a.B), kRows * 32, tile_bytes(a), stream(), a, o, lse);
}

void attention_rows_dq(const AttnParams& a, void* dq) {
  launch_with_smem(query_rows_kernel<true>, rows_grid(a.Tq, a.Hq, a.B), kRows * 32, tile_bytes(a), stream(), a, dq,
                   nullptr);
}

void attention_rows_dkdv(const AttnParams& a, void* dk, void* dv) {
  launch_with_smem(key_rows_kernel, rows_grid(a.Tk, a.Hkv, a.B), kRows * 32, tile_bytes(a), stream(), a, dk, dv);
}

}  // namespace gdn2::cuda
