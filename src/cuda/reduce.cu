// Fixed-order column reductions (reduce.h).
#include "cuda/reduce.h"

#include <algorithm>

#include "cuda/common.cuh"
#include "cuda/gdn2/load.cuh"
#include "cuda/stream.h"
#include "gdn2/tensor.h"

namespace gdn2::cuda {

namespace {

constexpr int64_t kRowsPerPart = 64;  // rows of one partial sum (a function of the shape only)
constexpr int64_t kMaxParts = 512;

// Column sums over row blocks: block (x, y) takes 32 columns and rows [y · rows_per_block, ...) of x [rows, cols]
// (row r at x + r · stride, element type t); its 8 lanes add every 8th row, then lane 0 adds the lanes in order and
// writes (or, with `add`, adds) the sum at out[y · cols + c] (element type out_type).
__global__ void column_block_sum_kernel(const void* x, ElemType t, int64_t stride, int64_t rows, int64_t cols,
                                        int64_t rows_per_block, void* out, ElemType out_type, bool add) {
  __shared__ float lanes[8][33];
  const int64_t c = static_cast<int64_t>(blockIdx.x) * 32 + threadIdx.x;
  const int64_t r0 = static_cast<int64_t>(blockIdx.y) * rows_per_block, r1 = min(rows, r0 + rows_per_block);
  float s = 0.f;
  if (c < cols)
    for (int64_t r = r0 + threadIdx.y; r < r1; r += 8) s += load_elem(x, t, r * stride + c);
  lanes[threadIdx.y][threadIdx.x] = s;
  __syncthreads();
  if (threadIdx.y != 0 || c >= cols) return;
  float total = 0.f;
#pragma unroll
  for (int y = 0; y < 8; ++y) total += lanes[y][threadIdx.x];
  const int64_t at = static_cast<int64_t>(blockIdx.y) * cols + c;
  store_elem(out, out_type, at, add ? load_elem(out, out_type, at) + total : total);
}

void column_block_sums(const void* x, ElemType t, int64_t stride, int64_t rows, int64_t cols, int64_t rows_per_block,
                       void* out, ElemType out_type, bool add) {
  const int64_t blocks = (rows + rows_per_block - 1) / rows_per_block;
  column_block_sum_kernel<<<dim3(static_cast<unsigned>((cols + 31) / 32), static_cast<unsigned>(blocks)), dim3(32, 8),
                            0, stream()>>>(x, t, stride, rows, cols, rows_per_block, out, out_type, add);
  GDN2_CUDA_CHECK(cudaGetLastError());
}

}  // namespace

void sum_row_parts(const float* part, int64_t parts, int64_t stride, int64_t cols, void* out, ElemType out_type,
                   bool add) {
  column_block_sums(part, ElemType::f32, stride, parts, cols, parts, out, out_type, add);
}

void column_sum_add(const void* x, ElemType x_type, int64_t rows, int64_t cols, void* out, ElemType out_type) {
  const int64_t per = std::max(kRowsPerPart, (rows + kMaxParts - 1) / kMaxParts);
  const int64_t parts = (rows + per - 1) / per;
  Tensor part = Tensor::empty({parts, cols}, DType::f32, Device::cuda);
  column_block_sums(x, x_type, cols, rows, cols, per, part.raw_mut(), ElemType::f32, false);
  sum_row_parts(static_cast<const float*>(part.raw()), parts, cols, cols, out, out_type, true);
}

}  // namespace gdn2::cuda
