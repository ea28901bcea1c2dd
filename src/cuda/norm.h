// CUDA backend of the row norms (include/gdn2/ops/norm.h): L2 norm and gated RMSNorm, forward and backward, for GPU
// tensors viewed as [rows, D]; arguments validated by src/ops/norm.cpp. Also the fixed-order sum of per-part partial
// rows that the row ops use for their parameter gradients.
#pragma once

#include <cstdint>

#include "gdn2/ops/norm.h"

namespace gdn2::cuda {

// Row width limit of the norm kernels (a group of at most 1024 threads per row, at most 16 elements per thread).
inline constexpr int64_t kNormMaxD = 16384;

// x [rows, D] (F32, BF16 or F16; D <= kNormMaxD, else UnsupportedError). y in x's dtype and shape, rstd F32 [rows].
L2NormResult l2_norm_rows(const Tensor& x, double eps, int64_t rows, int64_t D);
// dy and y [rows, D] of one dtype, rstd F32 [rows]; dx in y's dtype and shape.
Tensor l2_norm_rows_grad(const Tensor& dy, const Tensor& y, const Tensor& rstd, int64_t rows, int64_t D);

// x [rows, D]; weight [D] (F32 or x's dtype) or undefined; gate like x or undefined. y like x, rstd F32 [rows]
// (shaped by the caller).
RmsNormResult rms_norm_rows(const Tensor& x, const Tensor& weight, const Tensor& gate, const RmsNormOptions& o,
                            int64_t rows, int64_t D);
// dy like x, rstd F32 [rows]. dx and dgate like x and gate; dweight F32 [D], summed over the rows in a fixed order
// (per-block partial rows, then sum_row_parts of reduce.h): bitwise reproducible on any GPU. dres (like x, or
// undefined) is added to dx.
RmsNormGrads rms_norm_rows_grad(const Tensor& dy, const Tensor& x, const Tensor& rstd, const Tensor& weight,
                                const Tensor& gate, const RmsNormOptions& o, int64_t rows, int64_t D,
                                const Tensor& dres);

}  // namespace gdn2::cuda
