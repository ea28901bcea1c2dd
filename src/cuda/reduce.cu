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

// out[c] (+)= Σ_p part[p · stride + c]: a block takes 32 columns; its 8 lanes add every 8th part, then lane 0 adds the
// lanes in order.
__global__ void sum_parts_kernel(const float* part, int64_t parts, int64_t stride, int64_t cols, void* out,
                                 ElemType out_type, bool add) {
  __shared__ float lanes[8][33];
  const int64_t c = static_cast<int64_t>(blockIdx.x) * 32 + threadIdx.x;
  float s = 0.f;
  if (c < cols)
    for (int64_t p = threadIdx.y; p < parts; p += 8) s += part[p * stride + c];
  lanes[threadIdx.y][threadIdx.x] = s;
  __syncthreads();
  if (threadIdx.y != 0 || c >= cols) return;
  float total = 0.f;
#pragma unroll
  for (int y = 0; y < 8; ++y) total += lanes[y][threadIdx.x];
  store_elem(out, out_type, c, add ? load_elem(out, out_type, c) + total : total);
}

// part[blockIdx.y · cols + c] = Σ over the block's rows (rows_per_part of them) of x[r, c]: 32 columns per block, 8 row
// lanes strided, the lanes then added in order.
__global__ void column_parts_kernel(const void* x, ElemType t, int64_t rows, int64_t cols, int64_t rows_per_part,
                                    float* part) {
  __shared__ float lanes[8][33];
  const int64_t c = static_cast<int64_t>(blockIdx.x) * 32 + threadIdx.x;
  const int64_t r0 = static_cast<int64_t>(blockIdx.y) * rows_per_part, r1 = min(rows, r0 + rows_per_part);
  float s = 0.f;
  if (c < cols)
    for (int64_t r = r0 + threadIdx.y; r < r1; r += 8) s += load_elem(x, t, r * cols + c);
  lanes[threadIdx.y][threadIdx.x] = s;
  __syncthreads();
  if (threadIdx.y != 0 || c >= cols) return;
  float total = 0.f;
#pragma unroll
  for (int y = 0; y < 8; ++y) total += lanes[y][threadIdx.x];
  part[static_cast<int64_t>(blockIdx.y) * cols + c] = total;
}

}  // namespace

void sum_row_parts(const float* part, int64_t parts, int64_t stride, int64_t cols, void* out, ElemType out_type,
                   bool add) {
  sum_parts_kernel<<<static_cast<unsigned>((cols + 31) / 32), dim3(32, 8), 0, stream()>>>(part, parts, stride, cols,
                                                                                           out, out_type, add);
  GDN2_CUDA_CHECK(cudaGetLastError());
}

void column_sum_add(const void* x, ElemType x_type, int64_t rows, int64_t cols, void* out, ElemType out_type) {
  const int64_t per = std::max(kRowsPerPart, (rows + kMaxParts - 1) / kMaxParts);
  const int64_t parts = (rows + per - 1) / per;
  Tensor part = Tensor::empty({parts, cols}, DType::f32, Device::cuda);
  column_parts_kernel<<<dim3(static_cast<unsigned>((cols + 31) / 32), static_cast<unsigned>(parts)), dim3(32, 8), 0,
                        stream()>>>(x, x_type, rows, cols, per, static_cast<float*>(part.raw_mut()));
  GDN2_CUDA_CHECK(cudaGetLastError());
  sum_row_parts(static_cast<const float*>(part.raw()), parts, cols, cols, out, out_type, true);
}

}  // namespace gdn2::cuda
