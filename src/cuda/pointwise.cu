// CUDA pointwise ops of the model: activations and their gradients, SwiGLU, products, in-place add and scale.
#include "cuda/common.cuh"
#include "cuda/elem.h"
#include "cuda/gdn2/load.cuh"
#include "cuda/model_ops.h"

namespace gdn2::cuda {

namespace {

constexpr int kThreads = 256;

unsigned grid_for(int64_t n) { return static_cast<unsigned>(std::min<int64_t>((n + kThreads - 1) / kThreads, 132 * 16)); }

__device__ __forceinline__ float sigmoidf(float x) { return 1.f / (1.f + __expf(-x)); }

__global__ void pointwise_kernel(Pointwise op, const void* a, const void* b, ElemType t, void* y, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const float x = load_elem(a, t, i);
    const float z = b != nullptr ? load_elem(b, t, i) : 0.f;
    float r;
    switch (op) {
      case Pointwise::sigmoid_forward: r = sigmoidf(x); break;
      case Pointwise::silu_forward: r = x * sigmoidf(x); break;
      case Pointwise::sigmoid_backward: r = x * z * (1.f - z); break;  // (dy, y)
      case Pointwise::silu_backward: {                                 // (dy, x)
        const float s = sigmoidf(z);
        r = x * s * (1.f + z * (1.f - s));
        break;
      }
      case Pointwise::swiglu_forward: r = x * sigmoidf(x) * z; break;  // (gate, up)
      default: r = x * z;                                      // mul
    }
    store_elem(y, t, i, r);
  }
}

__global__ void swiglu_backward_kernel(const void* dh, const void* gate, const void* up, ElemType t, void* dgate,
                                       void* dup, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const float d = load_elem(dh, t, i), g = load_elem(gate, t, i), u = load_elem(up, t, i);
    const float s = sigmoidf(g);
    store_elem(dgate, t, i, d * u * s * (1.f + g * (1.f - s)));
    store_elem(dup, t, i, d * g * s);
  }
}

__global__ void add_kernel(void* x, ElemType xt, const void* y, ElemType yt, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    store_elem(x, xt, i, load_elem(x, xt, i) + load_elem(y, yt, i));
}

__global__ void scale_kernel(void* x, ElemType t, int64_t n, float s) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    store_elem(x, t, i, load_elem(x, t, i) * s);
}

}  // namespace

Tensor pointwise(Pointwise op, const Tensor& a, const Tensor& b) {
  Tensor y = Tensor::empty(a.shape(), a.dtype(), Device::cuda);
  if (a.numel() == 0) return y;
  pointwise_kernel<<<grid_for(a.numel()), kThreads>>>(op, a.raw(), b.defined() ? b.raw() : nullptr,
                                                      elem_type(a, "pointwise", "x"), y.raw_mut(), a.numel());
  GDN2_CUDA_CHECK(cudaGetLastError());
  return y;
}

void swiglu_backward(const Tensor& dh, const Tensor& gate, const Tensor& up, Tensor& dgate, Tensor& dup) {
  dgate = Tensor::empty(gate.shape(), gate.dtype(), Device::cuda);
  dup = Tensor::empty(up.shape(), up.dtype(), Device::cuda);
  if (dh.numel() == 0) return;
  swiglu_backward_kernel<<<grid_for(dh.numel()), kThreads>>>(dh.raw(), gate.raw(), up.raw(),
                                                             elem_type(dh, "swiglu_backward", "dh"), dgate.raw_mut(),
                                                             dup.raw_mut(), dh.numel());
  GDN2_CUDA_CHECK(cudaGetLastError());
}

void add_inplace(Tensor& x, const Tensor& y) {
  if (x.numel() == 0) return;
  add_kernel<<<grid_for(x.numel()), kThreads>>>(x.raw_mut(), elem_type(x, "add_inplace", "x"), y.raw(),
                                                elem_type(y, "add_inplace", "y"), x.numel());
  GDN2_CUDA_CHECK(cudaGetLastError());
}

void scale_inplace(Tensor& x, double s) {
  if (x.numel() == 0) return;
  scale_kernel<<<grid_for(x.numel()), kThreads>>>(x.raw_mut(), elem_type(x, "scale_inplace", "x"), x.numel(),
                                                  static_cast<float>(s));
  GDN2_CUDA_CHECK(cudaGetLastError());
}

}  // namespace gdn2::cuda
