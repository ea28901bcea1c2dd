// Token-recurrent GDN-2 on the GPU: decode (one token per sequence, state updated in place) and short multi-token
// runs (speculative verify). One block per (sequence, value head, 32-column slice of V); 4 warps split the K rows;
// the state slice lives in registers, fp32 or bf16 in memory.
#include "cuda/common.cuh"
#include "cuda/gdn2/kernels.h"
#include "cuda/gdn2/load.cuh"

namespace gdn2::cuda {

namespace {

constexpr int kWarps = 4;
constexpr int kCols = 32;

// Sums a per-thread value over the 4 warps of a column: returns the total in every thread of the column.
__device__ __forceinline__ float column_sum(float x, float (*red)[kCols], int warp, int lane) {
  red[warp][lane] = x;
  __syncthreads();
  float s = 0.f;
#pragma unroll
  for (int w = 0; w < kWarps; ++w) s += red[w][lane];
  __syncthreads();
  return s;
}

// Sum over the whole block (for the L2 norms).
__device__ __forceinline__ float block_sum(float x, float* scratch) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) scratch[warp] = x;
  __syncthreads();
  float s = 0.f;
#pragma unroll
  for (int w = 0; w < kWarps; ++w) s += scratch[w];
  __syncthreads();
  return s;
}

template <int RPT>  // state rows per thread: K <= 4 * RPT
__global__ void __launch_bounds__(kWarps * 32) recurrent_kernel(Gdn2Params p) {
  const int col0 = blockIdx.x * kCols, hv = blockIdx.y, n = blockIdx.z;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, col = col0 + lane;
  const bool col_ok = col < p.V;
  const int K = p.K, V = p.V, group = p.HV / p.H, hq = hv / group;
  __shared__ float sq[4 * RPT], sk[4 * RPT], seg[4 * RPT], sbk[4 * RPT];
  __shared__ float red[kWarps][kCols];
  __shared__ float scratch[kWarps];

  // State slice: rows warp*RPT + i, column `col`.
  float s[RPT];
  const int64_t state_base = ((int64_t)n * p.HV + hv) * K * V;
#pragma unroll
  for (int i = 0; i < RPT; ++i) {
    const int r = warp * RPT + i;
    s[i] = (p.h0 != nullptr && r < K && col_ok) ? load_elem(p.h0, p.state_type, state_base + (int64_t)r * V + col) : 0.f;
  }
  int64_t t0, t1;
  sequence_range(p, n, t0, t1);
  for (int64_t tok = t0; tok < t1; ++tok) {
    // q, k, exp(g), b ⊙ k for this token, shared by the block.
    float qss = 0.f, kss = 0.f;
    for (int d = threadIdx.x; d < K; d += blockDim.x) {
      const float qd = load_elem(p.q.ptr, p.q.type, tok * p.q.stride_token + hq * p.q.stride_head + d);
      const float kd = load_elem(p.k.ptr, p.k.type, tok * p.k.stride_token + hq * p.k.stride_head + d);
      sq[d] = qd;
      sk[d] = kd;
      qss += qd * qd;
      kss += kd * kd;
      seg[d] = __expf(load_decay(p, tok, hv, d));
    }
    float qscale = p.scale, kscale = 1.f;
    if (p.l2norm) {
      qscale *= rsqrtf(block_sum(qss, scratch) + 1e-6f);
      kscale = rsqrtf(block_sum(kss, scratch) + 1e-6f);
    }
    __syncthreads();
    for (int d = threadIdx.x; d < K; d += blockDim.x) {
      sk[d] *= kscale;
      sq[d] *= qscale;
      sbk[d] = load_gate(p.b, tok, hv, group, p.HV, d, 0.f) * sk[d];
    }
    __syncthreads();
    // Decay and erase read: e = S^T (b ⊙ k).
    float acc = 0.f;
#pragma unroll
    for (int i = 0; i < RPT; ++i) {
      const int r = warp * RPT + i;
      if (r < K) {
        s[i] *= seg[r];
        acc += sbk[r] * s[i];
      }
    }
    const float erase = column_sum(acc, red, warp, lane);
    float u = 0.f;
    if (col_ok) {
      const float vv = load_elem(p.v.ptr, p.v.type, tok * p.v.stride_token + hv * p.v.stride_head + col);
      const float ww = load_gate(p.w, tok, hv, group, p.HV, col, 1.f);
      u = ww * vv - erase;
    }
    // Write and read: S += k u^T; o = S^T (scale q).
    float oacc = 0.f;
#pragma unroll
    for (int i = 0; i < RPT; ++i) {
      const int r = warp * RPT + i;
      if (r < K) {
        s[i] += sk[r] * u;
        oacc += sq[r] * s[i];
      }
    }
    const float o = column_sum(oacc, red, warp, lane);
    if (col_ok && warp == 0) store_elem(p.o, p.o_type, (tok * p.HV + hv) * V + col, o);
  }
  if (p.ht != nullptr && col_ok) {
#pragma unroll
    for (int i = 0; i < RPT; ++i) {
      const int r = warp * RPT + i;
      if (r < K) store_elem(p.ht, p.state_type, state_base + (int64_t)r * V + col, s[i]);
    }
  }
}

}  // namespace

void launch_recurrent(const Gdn2Params& p) {
  const dim3 grid((p.V + kCols - 1) / kCols, p.HV, p.N), block(kWarps * 32);
  if (p.N == 0) return;
  if (p.K <= 32)
    recurrent_kernel<8><<<grid, block, 0, p.stream>>>(p);
  else if (p.K <= 64)
    recurrent_kernel<16><<<grid, block, 0, p.stream>>>(p);
  else if (p.K <= 128)
    recurrent_kernel<32><<<grid, block, 0, p.stream>>>(p);
  else if (p.K <= 256)
    recurrent_kernel<64><<<grid, block, 0, p.stream>>>(p);
  else
    GDN2_THROW(UnsupportedError, "CUDA GDN-2 recurrent kernel: K=", p.K, " above 256");
  GDN2_CUDA_CHECK(cudaGetLastError());
}

}  // namespace gdn2::cuda
