// CUDA backend of the softmax attention op (include/gdn2/ops/attention.h); arguments validated by
// src/ops/attention.cpp. q, k, v (and o, d_o) share one dtype (F32, BF16 or F16); o, dq, dk, dv in that dtype, lse F32;
// fp32 arithmetic; head dim at most kAttentionMaxHeadDim. BF16/F16 with head dim 64 or 128 (forward also 256) take the
// tensor-core kernels (attention_fwd.cu, attention_bwd_dq.cu, attention_bwd_dkdv.cu), the rest the general fp32
// kernels (attention_rows.cu). No atomics: dk and dv sum a group's query heads in order, so results are reproducible.
// With repeated_shape (AttentionOptions), what cuDNN's fused attention takes goes there (attention_cudnn.h).
#pragma once

#include "gdn2/ops/attention.h"

namespace gdn2::cuda {

inline constexpr int64_t kAttentionMaxHeadDim = 256;

// scale resolved (never 0), window >= 0; all tensors on the GPU, contiguous.
AttentionResult attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, double scale, int64_t window,
                                  bool repeated_shape);
AttentionGrads attention_backward(const Tensor& d_o, const Tensor& q, const Tensor& k, const Tensor& v,
                                  const Tensor& o, const Tensor& lse, double scale, int64_t window,
                                  bool repeated_shape);

// Decode against KV caches (include/gdn2/ops/attention.h attention_decode): q [N, Hq, D], caches [S, L, Hkv, D], one
// dtype; lengths I32 [N] on the GPU, read in place. Split over the cache's length (flash-decoding) with a fixed split
// count for a given (N, L, heads), so that a captured graph stays valid for any lengths. gate (optional, like q)
// multiplies the output as it is written.
Tensor attention_decode(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache, const Tensor& lengths,
                        double scale, int64_t window, const Tensor& gate = Tensor());
// cache [S, L, Hkv, D], x [N, Hkv, D] of one dtype, positions I32 [N] on the GPU.
void kv_cache_write(Tensor& cache, const Tensor& x, const Tensor& positions);
// include/gdn2/ops/attention.h attention_decode_inputs, checked by the op: qkv [N, (2 Hq + 2 Hkv) D] (per row q and
// its gate per head side by side, then k, then v), caches [S, L, Hkv, D] of qkv's dtype on the GPU, D <= 256; weights
// [D] of one dtype or undefined; rotary_dim resolved (0: no rotation); positions I32 [N] on the GPU. Returns q and the
// gate's sigmoid, [N, Hq, D] each. src/cuda/attention_decode_inputs.cu.
AttentionDecodeInputs attention_decode_inputs(const Tensor& qkv, int64_t Hq, int64_t Hkv, const Tensor& q_weight,
                                              const Tensor& k_weight, double eps, bool zero_centred, double theta,
                                              int64_t rotary_dim, Tensor& k_cache, Tensor& v_cache,
                                              const Tensor& positions);

}  // namespace gdn2::cuda
