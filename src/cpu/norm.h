// CPU backend of the row norms (include/gdn2/ops/norm.h); arguments arrive validated, as [rows, D] views.
#pragma once

#include "gdn2/ops/norm.h"

namespace gdn2::cpu {

// Every tensor is in one compute dtype (F32 or F64): x, y, dy, gate [rows, D]; weight [D]; rstd [rows].
L2NormResult l2_norm_forward(const Tensor& x, double eps);
Tensor l2_norm_backward(const Tensor& dy, const Tensor& y, const Tensor& rstd);
RmsNormResult rms_norm_forward(const Tensor& x, const Tensor& weight, const Tensor& gate, const RmsNormOptions& opt);
RmsNormGrads rms_norm_backward(const Tensor& dy, const Tensor& x, const Tensor& rstd, const Tensor& weight,
                               const Tensor& gate, const RmsNormOptions& opt);

}  // namespace gdn2::cpu
