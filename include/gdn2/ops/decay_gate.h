// The log-decay gate of GDN-2/KDA (channel-wise) and GDN/Qwen3.5 (one per head), forward and backward:
//
//   g = −exp(A_log[h]) · softplus(f + dt_bias)        (natural log space, g <= 0)
//
// softplus(x) = x for x > 20, else log1p(exp(x)) (fla's threshold). g is formed as −exp(A_log + log softplus(x))
// and dg/dx as −exp(A_log + log sigmoid(x)), so a huge A_log or a very negative x never makes 0·inf = NaN.
//
// Shape contract (H heads of K = head_dim channels each; H is A_log's length):
//   f         [..., H, K] or [..., H·K] (the projection's flat output); the GDN/Qwen3.5 scalar gate is head_dim = 1
//             with f [..., H] (or [..., H, 1])
//   A_log     [H]
//   dt_bias   [H·K] or [H, K] or undefined
//   g, dg     like f
// Inputs may be any float dtype. Computation is in double when f is F64, else in float; outputs and gradients
// are F64 or F32 accordingly and have the shape of the argument they belong to. Every argument lives on f's device;
// decay_gate_backward also takes CUDA tensors (F32 on the GPU, f not F64; deterministic). With df_like_f, df comes
// in f's dtype instead.
#pragma once

#include <cstdint>

#include "gdn2/tensor.h"

namespace gdn2 {

struct DecayGateGrads {
  Tensor df;        // like f
  Tensor dA_log;    // [H] = Σ dg·g over the head's channels and all rows
  Tensor ddt_bias;  // shape of dt_bias; undefined when dt_bias is
};

Tensor decay_gate_forward(const Tensor& f, const Tensor& A_log, const Tensor& dt_bias, int64_t head_dim);
DecayGateGrads decay_gate_backward(const Tensor& dg, const Tensor& f, const Tensor& A_log, const Tensor& dt_bias,
                                   int64_t head_dim, bool df_like_f = false);

}  // namespace gdn2
