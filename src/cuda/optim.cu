// CUDA optimizer ops: the gradients' squared norm (one launch over every tensor, fixed-size chunks summed in a fixed
// order, no atomics) and the fused AdamW update that also scales the gradient (clipping) and writes the parameter's
// low-precision compute copy.
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
constexpr int64_t kChunk = 32768;  // elements per partial sum: a fixed size, so the summation order never changes

// One tensor of a sum_squares call: its memory, element type, length and the index of its first chunk.
struct SquaresPart {
  const void* ptr;
  int64_t n;
  int64_t first_chunk;
  int type;
};

// part[c] = Σ x² over chunk c of the concatenated tensors (blocks find their tensor by binary search), the block's
// threads added as a fixed tree; F32 chunks load four elements at a time.
__global__ void sum_squares_kernel(const SquaresPart* parts, int count, double* part) {
  __shared__ double s[kThreads];
  const int64_t c = blockIdx.x;
  int lo = 0, hi = count - 1;
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if (parts[mid].first_chunk <= c) lo = mid; else hi = mid - 1;
  }
  const SquaresPart t = parts[lo];
  const int64_t begin = (c - t.first_chunk) * kChunk, end = begin + kChunk < t.n ? begin + kChunk : t.n;
  const auto type = static_cast<ElemType>(t.type);
  double acc = 0;
  if (type == ElemType::f32 && (reinterpret_cast<uintptr_t>(t.ptr) & 15) == 0) {
    const float4* p = reinterpret_cast<const float4*>(static_cast<const float*>(t.ptr) + begin);
    const int64_t n4 = (end - begin) / 4;
    for (int64_t i = threadIdx.x; i < n4; i += kThreads) {
      const float4 e = p[i];
      const double x = e.x, y = e.y, z = e.z, w = e.w;
      acc += x * x + y * y + z * z + w * w;
    }
    for (int64_t i = begin + 4 * n4 + threadIdx.x; i < end; i += kThreads) {
      const float e = static_cast<const float*>(t.ptr)[i];
      acc += static_cast<double>(e) * e;
    }
  } else {
    for (int64_t i = begin + threadIdx.x; i < end; i += kThreads) {
      const float e = load_elem(t.ptr, type, i);
      acc += static_cast<double>(e) * e;
    }
  }
  s[threadIdx.x] = acc;
  __syncthreads();
  for (int w = kThreads / 2; w > 0; w /= 2) {
    if (threadIdx.x < w) s[threadIdx.x] += s[threadIdx.x + w];
    __syncthreads();
  }
  if (threadIdx.x == 0) part[c] = s[0];
}

// out[0] = Σ part, one block: thread i adds every kThreads-th part, then a fixed tree.
__global__ void sum_doubles_kernel(const double* part, int64_t n, double* out) {
  __shared__ double s[kThreads];
  double acc = 0;
  for (int64_t i = threadIdx.x; i < n; i += kThreads) acc += part[i];
  s[threadIdx.x] = acc;
  __syncthreads();
  for (int w = kThreads / 2; w > 0; w /= 2) {
    if (threadIdx.x < w) s[threadIdx.x] += s[threadIdx.x + w];
    __syncthreads();
  }
  if (threadIdx.x == 0) out[0] = s[0];
}

__global__ void adamw_kernel(float* __restrict__ value, const float* __restrict__ grad, float* __restrict__ m,
                             float* __restrict__ v, void* compute, ElemType compute_type, int64_t n, float grad_scale,
                             float lr, float beta1, float beta2, float eps, float wd, float inv_c1, float inv_sqrt_c2) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const float g = grad[i] * grad_scale;
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
  std::vector<SquaresPart> parts;
  int64_t chunks = 0;
  for (const Tensor* t : tensors) {
    if (t->numel() == 0) continue;
    parts.push_back({t->raw(), t->numel(), chunks, static_cast<int>(elem_type(*t, "sum_squares", "tensor"))});
    chunks += (t->numel() + kChunk - 1) / kChunk;
  }
  if (parts.empty()) return 0;
  GDN2_CHECK(chunks < (int64_t{1} << 31), UnsupportedError, "sum_squares: ", chunks, " chunks are too many");
  const auto bytes = static_cast<int64_t>(parts.size() * sizeof(SquaresPart));
  Tensor table = Tensor::empty({bytes}, DType::u8, Device::cuda);
  GDN2_CUDA_CHECK(cudaMemcpyAsync(table.raw_mut(), parts.data(), static_cast<size_t>(bytes), cudaMemcpyHostToDevice,
                                  stream()));
  Tensor part = Tensor::empty({chunks + 1}, DType::f64, Device::cuda);
  auto* p = static_cast<double*>(part.raw_mut());
  sum_squares_kernel<<<static_cast<unsigned>(chunks), kThreads, 0, stream()>>>(
      static_cast<const SquaresPart*>(table.raw()), static_cast<int>(parts.size()), p);
  GDN2_CUDA_CHECK(cudaGetLastError());
  sum_doubles_kernel<<<1, kThreads, 0, stream()>>>(p, chunks, p + chunks);
  GDN2_CUDA_CHECK(cudaGetLastError());
  return part.slice0(chunks, chunks + 1).cpu().data<double>()[0];
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
                                   static_cast<float>(h.grad_scale), static_cast<float>(h.lr), static_cast<float>(h.beta1), static_cast<float>(h.beta2),
                                   static_cast<float>(h.eps), static_cast<float>(h.weight_decay),
                                   static_cast<float>(1 / c1), static_cast<float>(1 / std::sqrt(c2)));
  GDN2_CUDA_CHECK(cudaGetLastError());
}

}  // namespace gdn2::cuda
