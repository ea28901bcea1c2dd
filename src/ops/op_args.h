// Argument checks and dtype plumbing shared by the public ops; validation lives here and in src/ops, never in kernels.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <vector>

#include "gdn2/tensor.h"

namespace gdn2::op_args {

// DTypeError unless t is a float tensor; an undefined t passes (optional inputs).
void check_float(const Tensor& t, const char* op, const char* name);
// ValueError unless eps is finite and >= 0.
void check_eps(double eps, const char* op);
// The dtype an op computes in, given its primary input: F64 for F64, else F32.
DType compute_dtype(const Tensor& x);
// t itself when it already has dtype dt, else a converted copy; undefined stays undefined.
Tensor to_dtype(const Tensor& t, DType dt);
// Whether an op whose main input is x runs on the GPU (x is a CUDA tensor). Every defined tensor of `others` must be
// on x's device (ShapeError). On the GPU x must be F32, BF16 or F16 and the defined tensors of `same` share its dtype
// (DTypeError), and those of `params` are F32 or x's dtype; a build without the CUDA backend throws UnsupportedError.
bool on_cuda(const Tensor& x, std::initializer_list<const Tensor*> others, std::initializer_list<const Tensor*> same,
             std::initializer_list<const Tensor*> params, const char* op);

// x's shape without its last dimension.
Shape shape_drop_last(const Shape& s);

// Sequence boundaries as N + 1 row offsets into a [rows, ...] view of the tokens: from cu_seqlens when defined
// (I32/I64 [N + 1], N >= 1, starts at 0, non-decreasing, ends at total_rows), else batch b is rows
// [b·T, (b+1)·T). Throws DTypeError/ShapeError/ValueError naming `op`.
std::vector<int64_t> seq_offsets(const Tensor& cu_seqlens, int64_t batch, int64_t seq_len, const char* op);

}  // namespace gdn2::op_args
