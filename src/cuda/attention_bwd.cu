// CUDA attention backward, FlashAttention-2 style: the op's entry (path choice, outputs) and the preprocessing
// kernel delta = rowsum(dO ⊙ O); then dq (attention_bwd_dq.cu) and dk, dv (attention_bwd_dkdv.cu), or the general
// path's kernels (attention_rows.cu). Every gradient element is summed by one thread in a fixed order: no atomics,
// bitwise reproducible.
#include "cuda/attention.h"
#include "cuda/attention_cudnn.h"
#include "cuda/attention_params.h"
#include "cuda/common.cuh"
#include "cuda/stream.h"
#include "cuda/gdn2/load.cuh"

namespace gdn2::cuda {

namespace {

constexpr int kDeltaWarps = 8;  // rows per block of the delta kernel

// delta[b, h, i] = Σ_d dO[b, i, h, d] · O[b, i, h, d] in fp32, a warp per row (b, i, h).
__global__ void __launch_bounds__(kDeltaWarps * 32) attention_delta_kernel(AttnParams a, float* __restrict__ delta) {
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kDeltaWarps + threadIdx.x / 32;  // over (b, i, h)
  if (row >= a.B * a.Tq * a.Hq) return;
  const int lane = static_cast<int>(threadIdx.x) % 32;
  const int64_t h = row % a.Hq, i = row / a.Hq % a.Tq, b = row / (a.Hq * a.Tq);
  float s = 0.f;
  for (int64_t d = lane; d < a.D; d += 32)
    s += load_elem(a.d_o, a.t, row * a.D + d) * load_elem(a.o, a.t, row * a.D + d);
  for (int o = 16; o > 0; o /= 2) s += __shfl_xor_sync(0xffffffffu, s, o);
  if (lane == 0) delta[(b * a.Hq + h) * a.Tq + i] = s;
}

}  // namespace

AttentionGrads attention_backward(const Tensor& d_o, const Tensor& q, const Tensor& k, const Tensor& v,
                                  const Tensor& o, const Tensor& lse, double scale, int64_t window,
                                  bool repeated_shape) {
  AttnParams a = attn_params(q, k, v, scale, window, "attention_backward");
  a.o = o.raw();
  a.d_o = d_o.raw();
  a.lse = static_cast<const float*>(lse.raw());
  AttentionGrads g;
  g.dq = Tensor::empty(q.shape(), q.dtype(), Device::cuda);
  g.dk = Tensor::empty(k.shape(), k.dtype(), Device::cuda);
  g.dv = Tensor::empty(v.shape(), v.dtype(), Device::cuda);
  if (a.B * a.Tk == 0) return g;  // every output is empty (Tq <= Tk)
  if (a.Tq == 0) {                // no query sees any key
    detail::cuda_memory().zero(g.dk.raw_mut(), g.dk.nbytes());
    detail::cuda_memory().zero(g.dv.raw_mut(), g.dv.nbytes());
    return g;
  }
  if (repeated_shape && cudnn_attention_backward(a, g.dq.raw_mut(), g.dk.raw_mut(), g.dv.raw_mut())) return g;
  Tensor delta = Tensor::empty({a.B, a.Hq, a.Tq}, DType::f32, Device::cuda);
  const int64_t rows = a.B * a.Tq * a.Hq;
  attention_delta_kernel<<<static_cast<unsigned>((rows + kDeltaWarps - 1) / kDeltaWarps), kDeltaWarps * 32, 0, stream()>>>(
      a, static_cast<float*>(delta.raw_mut()));
  GDN2_CUDA_CHECK(cudaGetLastError());
  a.delta = static_cast<const float*>(delta.raw());
  if (attn_tensor_cores(a, true, {a.q, a.k, a.v, a.d_o, g.dq.raw(), g.dk.raw(), g.dv.raw()})) {
    attention_tc_dq(a, g.dq.raw_mut());
    attention_tc_dkdv(a, g.dk.raw_mut(), g.dv.raw_mut());
  } else {
    attention_rows_dq(a, g.dq.raw_mut());
    attention_rows_dkdv(a, g.dk.raw_mut(), g.dv.raw_mut());
  }
  return g;
}

}  // namespace gdn2::cuda
