// CPU kernels of the dense ops (include/gdn2/ops/dense.h); arguments are validated by src/ops/dense.cpp.
#pragma once

#include "gdn2/ops/dense.h"

namespace gdn2::cpu {

template <class Real>
void linear_forward(const Real* x, const Real* w, const Real* bias, Real* y, int64_t rows, int64_t in, int64_t out,
                    bool y_add = false);  // y_add: y += instead of =
template <class Real>
void linear_backward(const Real* dy, const Real* x, const Real* w, Real* dx, Real* dw, Real* db, int64_t rows,
                     int64_t in, int64_t out, bool dx_add = false,
                     bool dw_add = true);  // dx_add, dw_add: += instead of =
template <class Real>
LmLoss lm_head_cross_entropy(const Real* h, const Real* W, const int32_t* targets, int64_t N, int64_t D, int64_t V,
                             bool want_grad, Real* dW, double grad_scale, Tensor& dh);

}  // namespace gdn2::cpu
