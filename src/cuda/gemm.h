// Matrix products on cuBLASLt for the CUDA dense ops: one handle and one workspace per process (one device per
// process, as the data-parallel launch runs it), fp32 accumulation, an optional bias epilogue.
#pragma once

#include <cuda_runtime.h>
#include <library_types.h>

#include <cstdint>

#include "gdn2/tensor.h"

namespace gdn2::cuda {

// The cuBLAS element type of a tensor's dtype: F32, BF16 or F16 (DTypeError otherwise).
cudaDataType_t gemm_type(const Tensor& t, const char* op, const char* name);

// One operand of a column-major product: its memory, element type, leading dimension and whether it enters
// transposed. A row-major [rows, cols] tensor is the column-major cols x rows matrix with leading dimension cols.
struct GemmOperand {
  const void* ptr = nullptr;
  cudaDataType_t type = CUDA_R_32F;
  int64_t ld = 0;
  bool transposed = false;
};

// D [m, n] (column-major, leading dimension ldd, element type d_type) = op(A) [m, k] · op(B) [k, n] + beta · C,
// plus bias [m] (d_type) added to every column when bias is not null; C is D itself unless `c` (D's type and layout)
// is given. fp32 accumulation (fp32 inputs stay fp32: no TF32). Launched on `stream` (null: the thread's work stream,
// cuda/stream.h); no synchronisation.
void gemm(int64_t m, int64_t n, int64_t k, const GemmOperand& a, const GemmOperand& b, float beta, void* d,
          cudaDataType_t d_type, int64_t ldd, const void* bias, cudaStream_t stream = nullptr, const void* c = nullptr);

}  // namespace gdn2::cuda
