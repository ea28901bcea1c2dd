// CPU backend of causal grouped-query softmax attention (include/gdn2/ops/attention.h); arguments arrive validated.
#pragma once

#include <cstdint>

#include "gdn2/ops/attention.h"

namespace gdn2::cpu {

// q [B, Tq, Hq, D], k and v [B, Tk, Hkv, D], all in one compute dtype (F32 or F64); scale resolved (never 0).
struct AttentionArgs {
  Tensor q, k, v;
  double scale = 1.0;
  int64_t window = 0;
};

AttentionResult attention_forward(const AttentionArgs& a);
// d_o and o [B, Tq, Hq, D] and lse [B, Hq, Tq] in the compute dtype.
AttentionGrads attention_backward(const AttentionArgs& a, const Tensor& d_o, const Tensor& o, const Tensor& lse);

}  // namespace gdn2::cpu
