// CUDA backend of the dense ops (include/gdn2/ops/dense.h); arguments validated by src/ops/dense.cpp.
#pragma once

#include "gdn2/tensor.h"

namespace gdn2::cuda {

// y [rows, out] = x [rows, in] · weight [out, in]^T (+ bias [out]); y in x's dtype. rows, in, out > 0.
Tensor linear_forward(const Tensor& x, const Tensor& weight, const Tensor& bias, Tensor* into, const Tensor& residual,
                      int64_t rows, int64_t in,
                      int64_t out);
// dx = dy · weight (x's dtype; added into *dx_into when given, which is returned); dweight += dy^T x (= with
// dweight_overwrite) and dbias += Σ_rows dy in their own dtype (F32 or x's).
Tensor linear_backward(const Tensor& dy, const Tensor& x, const Tensor& weight, Tensor* dweight, Tensor* dbias,
                       Tensor* dx_into, int64_t rows, int64_t in, int64_t out, bool dweight_overwrite);

}  // namespace gdn2::cuda
