// Token-recurrent GDN-2 on the GPU: decode (one token per sequence, state updated in place) and short multi-token
// runs (speculative verify). One block per (sequence, value head, 32- or 64-column slice of V); 4 warps split the K rows;
// the state slice lives in registers, fp32 or bf16 in memory.
#include "cuda/common.cuh"
#include "cuda/gdn2/kernels.h"
#include "cuda/gdn2/load.cuh"

namespace gdn2::cuda {

namespace {

constexpr int kWarps = 4;

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

// Two adjacent state elements (columns c, c + 1 of one row): one 8-byte (fp32) or 4-byte (bf16) access when both
// exist and the pair is aligned, else element by element.
__device__ __forceinline__ float2 load_pair(const void* p, ElemType t, int64_t i, bool ok0, bool ok1) {
  if (ok0 && ok1 && (i & 1) == 0) {
    if (t == ElemType::f32) return *reinterpret_cast<const float2*>(static_cast<const float*>(p) + i);
    if (t == ElemType::bf16) return __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(static_cast<const __nv_bfloat16*>(p) + i));
  }
  return make_float2(ok0 ? load_elem(p, t, i) : 0.f, ok1 ? load_elem(p, t, i + 1) : 0.f);
}

__device__ __forceinline__ void store_pair(void* p, ElemType t, int64_t i, float2 x, bool ok0, bool ok1) {
  if (ok0 && ok1 && (i & 1) == 0) {
    if (t == ElemType::f32) {
      *reinterpret_cast<float2*>(static_cast<float*>(p) + i) = x;
      return;
    }
    if (t == ElemType::bf16) {
      *reinterpret_cast<__nv_bfloat162*>(static_cast<__nv_bfloat16*>(p) + i) = __float22bfloat162_rn(x);
      return;
    }
  }
  if (ok0) store_elem(p, t, i, x.x);
  if (ok1) store_elem(p, t, i + 1, x.y);
}

// CPL adjacent columns per lane (1 or 2): 32 * CPL columns a block. Wide blocks (2) move the state in 8-byte
// (fp32) or 4-byte (bf16) accesses and suit large batches; narrow blocks (1) give small batches more blocks.
template <int CPL>
__device__ __forceinline__ void load_cols(const void* p, ElemType t, int64_t i, const bool* ok, float* x) {
  if constexpr (CPL == 2) {
    const float2 v = load_pair(p, t, i, ok[0], ok[1]);
    x[0] = v.x;
    x[1] = v.y;
  } else {
    x[0] = ok[0] ? load_elem(p, t, i) : 0.f;
  }
}

template <int CPL>
__device__ __forceinline__ void store_cols(void* p, ElemType t, int64_t i, const bool* ok, const float* x) {
  if constexpr (CPL == 2) {
    store_pair(p, t, i, make_float2(x[0], x[1]), ok[0], ok[1]);
  } else if (ok[0]) {
    store_elem(p, t, i, x[0]);
  }
}

template <int RPT, int CPL>  // state rows per thread (K <= 4 * RPT), columns per lane
__global__ void __launch_bounds__(kWarps * 32) recurrent_kernel(Gdn2Params p) {
  constexpr int kBlockCols = 32 * CPL;
  const int col0 = blockIdx.x * kBlockCols, hv = blockIdx.y, n = blockIdx.z;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, col = col0 + CPL * lane;
  bool ok[CPL];
#pragma unroll
  for (int c = 0; c < CPL; ++c) ok[c] = col + c < p.V;
  const int K = p.K, V = p.V, group = p.HV / p.H, hq = hv / group;
  __shared__ float sq[4 * RPT], sk[4 * RPT], seg[4 * RPT], sbk[4 * RPT];
  __shared__ float red[kWarps][kBlockCols];
  __shared__ float scratch[kWarps];

  // State slice: rows warp*RPT + i, columns col .. col + CPL - 1.
  float s[RPT][CPL];
  const int64_t state_base = ((int64_t)n * p.HV + hv) * K * V;
#pragma unroll
  for (int i = 0; i < RPT; ++i) {
    const int r = warp * RPT + i;
    if (p.h0 != nullptr && r < K) {
      load_cols<CPL>(p.h0, p.state_type, state_base + (int64_t)r * V + col, ok, s[i]);
    } else {
#pragma unroll
      for (int c = 0; c < CPL; ++c) s[i][c] = 0.f;
    }
  }
  int64_t t0, t1;
  sequence_range(p, n, t0, t1);
  for (int64_t tok = t0; tok < t1; ++tok) {
    // q, k, exp(g), b for this token, shared by the block; the norms of q and k are folded in below.
    float qss = 0.f, kss = 0.f;
    for (int d = threadIdx.x; d < K; d += blockDim.x) {
      const float qd = load_elem(p.q.ptr, p.q.type, tok * p.q.stride_token + hq * p.q.stride_head + d);
      const float kd = load_elem(p.k.ptr, p.k.type, tok * p.k.stride_token + hq * p.k.stride_head + d);
      sq[d] = qd;
      sk[d] = kd;
      qss += qd * qd;
      kss += kd * kd;
      seg[d] = __expf(load_decay(p, tok, hv, d));
      sbk[d] = load_gate(p.b, tok, hv, group, p.HV, d, 0.f);
    }
    float qscale = p.scale, kscale = 1.f;
    if (p.l2norm) {
      qscale *= rsqrtf(block_sum(qss, scratch) + 1e-6f);
      kscale = rsqrtf(block_sum(kss, scratch) + 1e-6f);
    }
    __syncthreads();
    // Decay and erase read: e = S^T (b ⊙ k).
    float acc[CPL] = {};
#pragma unroll
    for (int i = 0; i < RPT; ++i) {
      const int r = warp * RPT + i;
      if (r < K) {
        const float e = seg[r], bk = sbk[r] * sk[r] * kscale;
#pragma unroll
        for (int c = 0; c < CPL; ++c) {
          s[i][c] *= e;
          acc[c] += bk * s[i][c];
        }
      }
    }
#pragma unroll
    for (int c = 0; c < CPL; ++c) red[warp][CPL * lane + c] = acc[c];
    __syncthreads();
    float u[CPL];
#pragma unroll
    for (int c = 0; c < CPL; ++c) {
      float erase = 0.f;
#pragma unroll
      for (int w = 0; w < kWarps; ++w) erase += red[w][CPL * lane + c];
      const int64_t vi = tok * p.v.stride_token + hv * p.v.stride_head + col + c;
      u[c] = ok[c] ? load_gate(p.w, tok, hv, group, p.HV, col + c, 1.f) * load_elem(p.v.ptr, p.v.type, vi) - erase : 0.f;
    }
    __syncthreads();
    // Write and read: S += k u^T; o = S^T (scale q).
    float oacc[CPL] = {};
#pragma unroll
    for (int i = 0; i < RPT; ++i) {
      const int r = warp * RPT + i;
      if (r < K) {
        const float kr = sk[r] * kscale, qr = sq[r] * qscale;
#pragma unroll
        for (int c = 0; c < CPL; ++c) {
          s[i][c] += kr * u[c];
          oacc[c] += qr * s[i][c];
        }
      }
    }
#pragma unroll
    for (int c = 0; c < CPL; ++c) red[warp][CPL * lane + c] = oacc[c];
    __syncthreads();
    if (warp == 0) {
      float o[CPL] = {};
#pragma unroll
      for (int c = 0; c < CPL; ++c)
#pragma unroll
        for (int w = 0; w < kWarps; ++w) o[c] += red[w][CPL * lane + c];
      store_cols<CPL>(p.o, p.o_type, (tok * p.HV + hv) * V + col, ok, o);
    }
    __syncthreads();
  }
  if (p.ht != nullptr) {
#pragma unroll
    for (int i = 0; i < RPT; ++i) {
      const int r = warp * RPT + i;
      if (r < K) store_cols<CPL>(p.ht, p.state_type, state_base + (int64_t)r * V + col, ok, s[i]);
    }
  }
}

template <int CPL>
void launch_cols(const Gdn2Params& p) {
  const dim3 grid((p.V + 32 * CPL - 1) / (32 * CPL), p.HV, p.N), block(kWarps * 32);
  if (p.K <= 32)
    recurrent_kernel<8, CPL><<<grid, block, 0, p.stream>>>(p);
  else if (p.K <= 64)
    recurrent_kernel<16, CPL><<<grid, block, 0, p.stream>>>(p);
  else if (p.K <= 128)
    recurrent_kernel<32, CPL><<<grid, block, 0, p.stream>>>(p);
  else if (p.K <= 256)
    recurrent_kernel<64, CPL><<<grid, block, 0, p.stream>>>(p);
  else
    GDN2_THROW(UnsupportedError, "CUDA GDN-2 recurrent kernel: K=", p.K, " above 256");
}

}  // namespace

int sm_count() {
  static const int n = [] {
    int dev = 0, count = 0;
    cudaGetDevice(&dev);
    cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, dev);
    return count > 0 ? count : 132;
  }();
  return n;
}

void launch_recurrent(const Gdn2Params& p) {
  if (p.N == 0) return;
  // Wide blocks when they still fill the chip twice over, narrow ones (twice the blocks) for small batches.
  const int64_t wide_blocks = static_cast<int64_t>(p.N) * p.HV * ((p.V + 63) / 64);
  if (wide_blocks >= 2 * sm_count())
    launch_cols<2>(p);
  else
    launch_cols<1>(p);
  GDN2_CUDA_CHECK(cudaGetLastError());
}

}  // namespace gdn2::cuda
