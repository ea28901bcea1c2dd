// CUDA dense ops: the linear layer's forward and backward as cuBLASLt products (gemm.h), the bias gradient by a
// fixed-order column sum (reduce.h). Row-major [rows, cols] tensors are the column-major cols x rows matrices cuBLASLt takes.
#include "cuda/dense.h"

#include "cuda/common.cuh"
#include "cuda/stream.h"
#include "cuda/elem.h"
#include "cuda/gdn2/load.cuh"
#include "cuda/gemm.h"
#include "cuda/reduce.h"

namespace gdn2::cuda {

namespace {

constexpr const char* kOp = "CUDA linear";

}  // namespace

Tensor linear_forward(const Tensor& x, const Tensor& weight, const Tensor& bias, Tensor* into, const Tensor& residual,
                      int64_t rows, int64_t in, int64_t out) {
  const cudaDataType_t t = gemm_type(x, kOp, "x");
  Shape ys = x.shape();
  ys.back() = out;
  Tensor y = into != nullptr ? *into : Tensor::empty(ys, x.dtype(), Device::cuda);
  // y^T [out, rows] = W [out, in] · x^T [in, rows] (+ y or the residual): W is stored in x out (column-major), so it
  // enters transposed.
  const bool add = into != nullptr || residual.defined();
  gemm(out, rows, in, {weight.raw(), t, in, true}, {x.raw(), t, in, false}, add ? 1.f : 0.f, y.raw_mut(), t, out,
       bias.defined() ? bias.raw() : nullptr, nullptr, residual.defined() ? residual.raw() : nullptr);
  return y;
}

Tensor linear_backward(const Tensor& dy, const Tensor& x, const Tensor& weight, Tensor* dweight, Tensor* dbias,
                       Tensor* dx_into, int64_t rows, int64_t in, int64_t out, bool dweight_overwrite) {
  const cudaDataType_t t = gemm_type(x, kOp, "x");
  Tensor dx = dx_into != nullptr ? *dx_into : Tensor::empty(x.shape(), x.dtype(), Device::cuda);
  // dx^T [in, rows] (+)= W^T [in, out] · dy^T [out, rows].
  gemm(in, rows, out, {weight.raw(), t, in, false}, {dy.raw(), t, out, false}, dx_into != nullptr ? 1.f : 0.f,
       dx.raw_mut(), t, in, nullptr);
  if (rows == 0) {
    if (dweight != nullptr && dweight_overwrite) dweight->zero_();
    return dx;
  }
  if (dweight != nullptr)  // dW^T [in, out] (+)= x^T [in, rows] · dy [rows, out]
    gemm(in, out, rows, {x.raw(), t, in, false}, {dy.raw(), t, out, true}, dweight_overwrite ? 0.f : 1.f,
         dweight->raw_mut(), gemm_type(*dweight, kOp, "dweight"), in, nullptr);
  if (dbias != nullptr)
    column_sum_add(dy.raw(), elem_type(dy, kOp, "dy"), rows, out, dbias->raw_mut(), elem_type(*dbias, kOp, "dbias"));
  return dx;
}

}  // namespace gdn2::cuda
