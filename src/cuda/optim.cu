// CUDA optimizer ops: the gradients' squared norm (fixed-order partial sums, no atomics) and the fused AdamW update
// that also writes the parameter's low-precision compute copy.
#include "cuda/optim.h"

#include <algorithm>
#include <cmath>

#include "cuda/common.cuh"
#include "cuda/stream.h"
#include "cuda/elem.h"
#include "cuda/gdn2/load.cuh"

namespace gdn2::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int kMaxBlocks = 264;  // partial sums per tensor: a fixed count, so the summation order never changes

// part[blockIdx.x] = Σ x² over the block's grid-stride share, the block's threads added as a fixed tree.
__global__ void sum_squares_kernel(const void* x, ElemType type, int64_t n, double* part) {
  __shared__ double s[kThreads];
  double acc = 0;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(kThreads) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * kThreads) {
    const float e = load_elem(x, type, i);
    acc += static_cast<double>(e) * e;
  }
  s[threadIdx.x] = acc;
  __syncthreads();
  for (int w = kThreads / 2; w > 0; w /= 2) {
    if (threadIdx.x < w) s[threadIdx.x] += s[threadIdx.x + w];
    __syncthreads();
  }
  if (threadIdx.x == 0) part[blockIdx.x] = s[0];
}

__global__ void adamw_kernel(float* __restrict__ value, const float* __restrict__ grad, float* __restrict__ m,
                             float* __restrict__ v, void* compute, ElemType compute_type, int64_t n, float lr,
                             float beta1, float beta2, float eps, float wd, float inv_c1, float inv_sqrt_c2) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const float g = grad[i];
    const float mi = beta1 * m[i] + (1.f - beta1) * g;
    const float vi = beta2 * v[i] + (1.f - beta2) * g * g;
    m[i] = mi;
    v[i] = vi;
    const float w = value[i];
    const float nw = w - lr * ((mi * inv_c1) / (sqrtf(vi) * inv_sqrt_c2 + eps) + wd * w);
    value[i] = nw;
    if (compute != nullptr) store_elem(compute, compute_type, i, nw);
  }
}

}  // namespace

double sum_squares(const std::vector<const Tensor*>& tensors) {
  if (tensors.empty()) return 0;
  std::vector<int> blocks;
  int total = 0;
  for (const Tensor* t : tensors) {
    blocks.push_back(static_cast<int>(std::clamp<int64_t>((t->numel() + kThreads - 1) / kThreads, 1, kMaxBlocks)));
    total += blocks.back();
  }
  Tensor part = Tensor::empty({total}, DType::f64, Device::cuda);
  auto* p = static_cast<double*>(part.raw_mut());
  for (size_t k = 0, off = 0; k < tensors.size(); off += static_cast<size_t>(blocks[k]), ++k) {
    const Tensor& t = *tensors[k];
    sum_squares_kernel<<<blocks[k], kThreads, 0, stream()>>>(t.raw(), elem_type(t, "sum_squares", "tensor"), t.numel(), p + off);
    GDN2_CUDA_CHECK(cudaGetLastError());
  }
  const Tensor host = part.cpu();
  double s = 0;
  for (int64_t i = 0; i < total; ++i) s += host.data<double>()[i];
  return s;
}

void adamw_update(Tensor& value, const Tensor& grad, Tensor& m, Tensor& v, const AdamWHyper& h, Tensor* compute) {
  const int64_t n = value.numel();
  if (n == 0) return;
  const double c1 = 1 - std::pow(h.beta1, static_cast<double>(h.step));
  const double c2 = 1 - std::pow(h.beta2, static_cast<double>(h.step));
  const unsigned grid = static_cast<unsigned>(std::min<int64_t>((n + kThreads - 1) / kThreads, 132 * 8));
  adamw_kernel<<<grid, kThreads, 0, stream()>>>(static_cast<float*>(value.raw_mut()), static_cast<const float*>(grad.raw()),
                                   static_cast<float*>(m.raw_mut()), static_cast<float*>(v.raw_mut()),
                                   compute ? compute->raw_mut() : nullptr,
                                   compute ? elem_type(*compute, "adamw", "compute") : ElemType::f32, n,
                                   static_cast<float>(h.lr), static_cast<float>(h.beta1), static_cast<float>(h.beta2),
                                   static_cast<float>(h.eps), static_cast<float>(h.weight_decay),
                                   static_cast<float>(1 / c1), static_cast<float>(1 / std::sqrt(c2)));
  GDN2_CUDA_CHECK(cudaGetLastError());
}

}  // namespace gdn2::cuda
