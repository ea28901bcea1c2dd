// CPU backend of causal grouped-query softmax attention (include/gdn2/ops/attention.h); arguments arrive validated.
#pragma once

#include <cstdint>
#include <vector>

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

// Decode against KV caches: q [N, Hq, D], caches [S, L, Hkv, D] (compute dtype), lengths checked in [1, L].
Tensor attention_decode(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache,
                        const std::vector<int64_t>& lengths, double scale, int64_t window);

}  // namespace gdn2::cpu
