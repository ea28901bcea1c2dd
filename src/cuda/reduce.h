// Fixed-order column reductions for the CUDA ops' parameter gradients (bias, norm weight, conv weight): no atomics,
// so every run on any GPU gives the same bits. Device pointers; launched on the thread's work stream.
#pragma once

#include <cstdint>

#include "cuda/gdn2/params.h"

namespace gdn2::cuda {

// out[c] = Σ_p part[p · stride + c] for c < cols and p < parts (F32), in an order that depends only on parts; with
// `add`, out[c] += that sum instead. out is of element type out_type. parts >= 1, cols >= 1.
void sum_row_parts(const float* part, int64_t parts, int64_t stride, int64_t cols, void* out,
                   ElemType out_type = ElemType::f32, bool add = false);

// out[c] += Σ_r x[r · cols + c] for x [rows, cols] of element type x_type: row blocks summed into F32 partial rows,
// then sum_row_parts. out of element type out_type. rows, cols >= 1.
void column_sum_add(const void* x, ElemType x_type, int64_t rows, int64_t cols, void* out, ElemType out_type);

}  // namespace gdn2::cuda
