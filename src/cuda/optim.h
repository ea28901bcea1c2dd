// CUDA backend of the optimizer ops (include/gdn2/ops/optim.h); arguments validated by src/ops/optim.cpp.
#pragma once

#include <vector>

#include "gdn2/ops/optim.h"

namespace gdn2::cuda {

double sum_squares(const std::vector<const Tensor*>& tensors);  // F32, BF16 or F16 CUDA tensors
void adamw_update(const std::vector<AdamWSlot>& slots, const AdamWHyper& h);  // one launch over every slot

}  // namespace gdn2::cuda
