// CUDA backend of rotary position embedding (include/gdn2/ops/rope.h); arguments validated by src/ops/rope.cpp.
#pragma once

#include <cstdint>

#include "gdn2/tensor.h"

namespace gdn2::cuda {

// x [B, T, H, D] (F32, BF16 or F16) on the GPU; token (b, t) at position start + t, or positions[b, t] when
// `positions` (I32/I64 [B, T] on the GPU) is defined; 2 <= rotary_dim <= D, even. Rotates by the angle, or by minus
// the angle when inverse (the backward). Returns a fresh tensor like x. Angles in double as on the CPU, the rotation in
// fp32.
Tensor rope_rotate(const Tensor& x, int64_t start, const Tensor& positions, double theta, int64_t rotary_dim,
                   bool inverse);

}  // namespace gdn2::cuda
