// Host helpers for handing GPU tensors to the kernels: their run-time element tag (params.h, ElemType), and F32
// copies of inputs that the kernels read as fp32.
#pragma once

#include "cuda/gdn2/params.h"
#include "gdn2/error.h"
#include "gdn2/tensor.h"

namespace gdn2::cuda {

// DTypeError "<op>: <name> must be F32, BF16 or F16 on the GPU" for any other dtype.
inline ElemType elem_type(const Tensor& t, const char* op, const char* name) {
  switch (t.dtype()) {
    case DType::f32: return ElemType::f32;
    case DType::bf16: return ElemType::bf16;
    case DType::f16: return ElemType::f16;
    default: GDN2_THROW(DTypeError, op, ": ", name, " must be F32, BF16 or F16 on the GPU, got ", t.describe());
  }
}

// t itself when it is F32, else an F32 copy.
inline Tensor as_f32(const Tensor& t) { return t.dtype() == DType::f32 ? t : t.to(DType::f32); }

}  // namespace gdn2::cuda
