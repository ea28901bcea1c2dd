// CUDA backend of the decay gate's backward (include/gdn2/ops/decay_gate.h) for CUDA tensors.
#pragma once

#include "gdn2/ops/decay_gate.h"

namespace gdn2::cuda {

// dg and f [rows, H·K] (any float dtype), A_log [H], dt_bias [H·K] or undefined, all CUDA tensors; gradients
// df [rows, H·K] (df_dtype: F32, BF16 or F16), dA_log [H] and ddt_bias [H·K] (F32). Deterministic: the rows are cut
// into a fixed number of parts whose partial sums are added in order.
DecayGateGrads decay_gate_backward(const Tensor& dg, const Tensor& f, const Tensor& A_log, const Tensor& dt_bias,
                                   int64_t head_dim, DType df_dtype = DType::f32);

}  // namespace gdn2::cuda
