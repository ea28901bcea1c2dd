// CUDA backend of the softmax attention op (include/gdn2/ops/attention.h); arguments validated by
// src/ops/attention.cpp. q, k, v (and o, d_o) share one dtype (F32, BF16 or F16); o, dq, dk, dv in that dtype, lse F32;
// fp32 arithmetic; head dim at most kAttentionMaxHeadDim. No atomics: dk and dv sum a group's query heads in order.
#pragma once

#include "gdn2/ops/attention.h"

namespace gdn2::cuda {

inline constexpr int64_t kAttentionMaxHeadDim = 256;

AttentionResult attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, double scale, int64_t window);
AttentionGrads attention_backward(const Tensor& d_o, const Tensor& q, const Tensor& k, const Tensor& v,
                                  const Tensor& o, const Tensor& lse, double scale, int64_t window);

}  // namespace gdn2::cuda
