// Token-recurrent GDN-2 on the GPU: decode (one token per sequence, state updated in place) and short multi-token
// runs (speculative verify). One block per (sequence, value head, 64-column slice of V: two columns a lane); 4 warps split the K rows;
// the state slice lives in registers, fp32 or bf16 in memory.
#include "cuda/common.cuh"
#include "cuda/gdn2/kernels.h"
#include "cuda/gdn2/load.cuh"

namespace gdn2::cuda {

namespace {

constexpr int kWarps = 4;
constexpr int kCols = 64;  // two adjacent columns per lane

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

template <int RPT>  // state rows per thread: K <= 4 * RPT
__global__ void __launch_bounds__(kWarps * 32) recurrent_kernel(Gdn2Params p) {
  const int col0 = blockIdx.x * kCols, hv = blockIdx.y, n = blockIdx.z;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, col = col0 + 2 * lane;  // columns col, col + 1
  const bool ok0 = col < p.V, ok1 = col + 1 < p.V;
  const int K = p.K, V = p.V, group = p.HV / p.H, hq = hv / group;
  __shared__ float sq[4 * RPT], sk[4 * RPT], seg[4 * RPT], sbk[4 * RPT];
  __shared__ float red[kWarps][2 * 32];
  __shared__ float scratch[kWarps];

  // State slice: rows warp*RPT + i, columns col and col + 1.
  float2 s[RPT];
  const int64_t state_base = ((int64_t)n * p.HV + hv) * K * V;
#pragma unroll
  for (int i = 0; i < RPT; ++i) {
    const int r = warp * RPT + i;
    s[i] = (p.h0 != nullptr && r < K) ? load_pair(p.h0, p.state_type, state_base + (int64_t)r * V + col, ok0, ok1)
                                      : make_float2(0.f, 0.f);
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
      sbk[d] = load_gate(p.b, tok, hv, group, p.HV, d, 0.f);
    }
    float qscale = p.scale, kscale = 1.f;
    if (p.l2norm) {
      qscale *= rsqrtf(block_sum(qss, scratch) + 1e-6f);
      kscale = rsqrtf(block_sum(kss, scratch) + 1e-6f);
    }
    __syncthreads();
    // Decay and erase read: e = S^T (b ⊙ k), with k's norm folded in.
    float2 acc = make_float2(0.f, 0.f);
#pragma unroll
    for (int i = 0; i < RPT; ++i) {
      const int r = warp * RPT + i;
      if (r < K) {
        const float e = seg[r], bk = sbk[r] * sk[r] * kscale;
        s[i].x *= e;
        s[i].y *= e;
        acc.x += bk * s[i].x;
        acc.y += bk * s[i].y;
      }
    }
    red[warp][2 * lane] = acc.x;
    red[warp][2 * lane + 1] = acc.y;
    __syncthreads();
    float2 erase = make_float2(0.f, 0.f);
#pragma unroll
    for (int w = 0; w < kWarps; ++w) {
      erase.x += red[w][2 * lane];
      erase.y += red[w][2 * lane + 1];
    }
    __syncthreads();
    const int64_t vrow = tok * p.v.stride_token + hv * p.v.stride_head + col;
    const float2 vv = load_pair(p.v.ptr, p.v.type, vrow, ok0, ok1);
    const float w0 = ok0 ? load_gate(p.w, tok, hv, group, p.HV, col, 1.f) : 0.f;
    const float w1 = ok1 ? load_gate(p.w, tok, hv, group, p.HV, col + 1, 1.f) : 0.f;
    const float2 u = make_float2(w0 * vv.x - erase.x, w1 * vv.y - erase.y);
    // Write and read: S += k u^T; o = S^T (scale q).
    float2 oacc = make_float2(0.f, 0.f);
#pragma unroll
    for (int i = 0; i < RPT; ++i) {
      const int r = warp * RPT + i;
      if (r < K) {
        const float kr = sk[r] * kscale, qr = sq[r] * qscale;
        s[i].x += kr * u.x;
        s[i].y += kr * u.y;
        oacc.x += qr * s[i].x;
        oacc.y += qr * s[i].y;
      }
    }
    red[warp][2 * lane] = oacc.x;
    red[warp][2 * lane + 1] = oacc.y;
    __syncthreads();
    if (warp == 0) {
      float2 o = make_float2(0.f, 0.f);
#pragma unroll
      for (int w = 0; w < kWarps; ++w) {
        o.x += red[w][2 * lane];
        o.y += red[w][2 * lane + 1];
      }
      store_pair(p.o, p.o_type, (tok * p.HV + hv) * V + col, o, ok0, ok1);
    }
    __syncthreads();
  }
  if (p.ht != nullptr) {
#pragma unroll
    for (int i = 0; i < RPT; ++i) {
      const int r = warp * RPT + i;
      if (r < K) store_pair(p.ht, p.state_type, state_base + (int64_t)r * V + col, s[i], ok0, ok1);
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
