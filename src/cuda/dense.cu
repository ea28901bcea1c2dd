// CUDA dense ops: the linear layer's forward and backward as cuBLASLt products (gemm.h), the bias gradient by a
// column-sum kernel. Row-major [rows, cols] tensors are the column-major cols x rows matrices cuBLASLt takes.
#include "cuda/dense.h"

#include "cuda/common.cuh"
#include "cuda/stream.h"
#include "cuda/elem.h"
#include "cuda/gdn2/load.cuh"
#include "cuda/gemm.h"

namespace gdn2::cuda {

namespace {

constexpr const char* kOp = "CUDA linear";

// db[c] += Σ_r dy[r, c]: a block sums 32 columns, its 8 row lanes strided, then adds the lanes in a fixed order.
__global__ void column_sum_kernel(const void* dy, ElemType dy_type, int64_t rows, int64_t cols, void* db,
                                  ElemType db_type) {
  __shared__ float part[8][33];
  const int64_t c = static_cast<int64_t>(blockIdx.x) * 32 + threadIdx.x;
  float s = 0.f;
  if (c < cols)
    for (int64_t r = threadIdx.y; r < rows; r += 8) s += load_elem(dy, dy_type, r * cols + c);
  part[threadIdx.y][threadIdx.x] = s;
  __syncthreads();
  if (threadIdx.y != 0 || c >= cols) return;
  float total = 0.f;
#pragma unroll
  for (int y = 0; y < 8; ++y) total += part[y][threadIdx.x];
  store_elem(db, db_type, c, load_elem(db, db_type, c) + total);
}

}  // namespace

Tensor linear_forward(const Tensor& x, const Tensor& weight, const Tensor& bias, int64_t rows, int64_t in,
                      int64_t out) {
  const cudaDataType_t t = gemm_type(x, kOp, "x");
  Shape ys = x.shape();
  ys.back() = out;
  Tensor y = Tensor::empty(ys, x.dtype(), Device::cuda);
  // y^T [out, rows] = W [out, in] · x^T [in, rows]: W is stored in x out (column-major), so it enters transposed.
  gemm(out, rows, in, {weight.raw(), t, in, true}, {x.raw(), t, in, false}, 0.f, y.raw_mut(), t, out,
       bias.defined() ? bias.raw() : nullptr);
  return y;
}

Tensor linear_backward(const Tensor& dy, const Tensor& x, const Tensor& weight, Tensor* dweight, Tensor* dbias,
                       int64_t rows, int64_t in, int64_t out) {
  const cudaDataType_t t = gemm_type(x, kOp, "x");
  Tensor dx = Tensor::empty(x.shape(), x.dtype(), Device::cuda);
  // dx^T [in, rows] = W^T [in, out] · dy^T [out, rows].
  gemm(in, rows, out, {weight.raw(), t, in, false}, {dy.raw(), t, out, false}, 0.f, dx.raw_mut(), t, in, nullptr);
  if (rows == 0) return dx;
  if (dweight != nullptr)  // dW^T [in, out] += x^T [in, rows] · dy [rows, out]
    gemm(in, out, rows, {x.raw(), t, in, false}, {dy.raw(), t, out, true}, 1.f, dweight->raw_mut(),
         gemm_type(*dweight, kOp, "dweight"), in, nullptr);
  if (dbias != nullptr) {
    column_sum_kernel<<<static_cast<unsigned>((out + 31) / 32), dim3(32, 8), 0, stream()>>>(
        dy.raw(), elem_type(dy, kOp, "dy"), rows, out, dbias->raw_mut(), elem_type(*dbias, kOp, "dbias"));
    GDN2_CUDA_CHECK(cudaGetLastError());
  }
  return dx;
}

}  // namespace gdn2::cuda
