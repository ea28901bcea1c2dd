// Optimizer ops: the squared L2 norm of many gradients, and the AdamW update of many parameters at once (decoupled
// weight decay, bias-corrected moments), on the CPU or the GPU (one launch over every tensor).
//
//   g = grad_scale · grad (the clipping factor, applied in the same pass),
//   m = β1·m + (1 − β1)·g,  v = β2·v + (1 − β2)·g²,  value −= lr·( (m / c1) / (sqrt(v / c2) + eps) + wd·value )
//   with c1 = 1 − β1^step, c2 = 1 − β2^step (step >= 1).
//
// Shape contract: value, m, v and grad share one shape and one device; value, m, v share a dtype (F32 or F64 on the
// CPU, F32 on the GPU); grad is F32 or F64 on the CPU (value's dtype), F32 on the GPU. `compute`, when given, is a
// BF16 / F16 / F32 tensor of value's shape on value's device that receives the updated value rounded to its dtype
// (the mixed-precision copy that the forward reads), in the same pass.
#pragma once

#include <cstdint>
#include <vector>

#include "gdn2/tensor.h"

namespace gdn2 {

struct AdamWHyper {
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.95, eps = 1e-8, weight_decay = 0.0;
  int64_t step = 1;         // 1-based, for the bias corrections
  double grad_scale = 1.0;  // the gradient is read times this (global-norm clipping without a pass of its own)
};

// Σ_t Σ_i t[i]², accumulated in double; on the GPU one launch over all tensors, partial sums of fixed-size chunks
// added in double in a fixed order (the same result every run). Every tensor float and on one device; an empty list gives 0.
double sum_squares(const std::vector<const Tensor*>& tensors);

// One parameter of an AdamW update: its tensors (compute may be null) and whether h.weight_decay applies to it.
struct AdamWSlot {
  Tensor* value;
  const Tensor* grad;
  Tensor* m;
  Tensor* v;
  Tensor* compute = nullptr;
  bool decay = true;
};

// Every slot updated with h (each slot's tensors checked as above; all slots on one device).
void adamw_update(const std::vector<AdamWSlot>& slots, const AdamWHyper& h);
// One parameter, decayed by h.weight_decay.
void adamw_update(Tensor& value, const Tensor& grad, Tensor& m, Tensor& v, const AdamWHyper& h,
                  Tensor* compute = nullptr);

}  // namespace gdn2
