// CPU backend of the decay gate (include/gdn2/ops/decay_gate.h); arguments arrive validated.
#pragma once

#include <cstdint>

#include "gdn2/ops/decay_gate.h"

namespace gdn2::cpu {

// Every tensor is in one compute dtype (F32 or F64): f, dg [rows, H·K]; A_log [H]; dt_bias [H·K] or undefined.
// Returns g [rows, H·K].
Tensor decay_gate_forward(const Tensor& f, const Tensor& A_log, const Tensor& dt_bias, int64_t head_dim);
// Returns df [rows, H·K], dA_log [H], ddt_bias [H·K] when dt_bias is defined.
DecayGateGrads decay_gate_backward(const Tensor& dg, const Tensor& f, const Tensor& A_log, const Tensor& dt_bias,
                                   int64_t head_dim);

}  // namespace gdn2::cpu
