// CPU backend of rotary position embedding (include/gdn2/ops/rope.h); arguments arrive validated.
#pragma once

#include <cstdint>
#include <vector>

#include "gdn2/tensor.h"

namespace gdn2::cpu {

// x [B, T, H, D] F32 or F64; positions holds B·T entries (row-major [B, T]); 2 <= rotary_dim <= D, even.
// Rotates by +angle (forward) or −angle (inverse, the backward); returns a fresh tensor like x.
Tensor rope_rotate(const Tensor& x, const std::vector<int64_t>& positions, double theta, int64_t rotary_dim,
                   bool inverse);

}  // namespace gdn2::cpu
