// CUDA memory for gdn2::Tensor: allocation, copies and zero-fill, installed into core through detail::cuda_memory.
#include "cuda/common.cuh"
#include "gdn2/tensor.h"

namespace gdn2::detail::cuda_hooks {

namespace {

std::shared_ptr<void> alloc(size_t bytes) {
  void* p = nullptr;
  const cudaError_t st = cudaMalloc(&p, bytes);
  if (st != cudaSuccess) {
    cudaGetLastError();
    GDN2_THROW(DeviceError, "cudaMalloc of ", bytes, " bytes failed: ", cudaGetErrorString(st));
  }
  return std::shared_ptr<void>(p, [](void* q) { cudaFree(q); });
}

void copy(void* dst, bool dst_dev, const void* src, bool src_dev, size_t bytes) {
  const cudaMemcpyKind kind = dst_dev ? (src_dev ? cudaMemcpyDeviceToDevice : cudaMemcpyHostToDevice)
                                      : (src_dev ? cudaMemcpyDeviceToHost : cudaMemcpyHostToHost);
  GDN2_CUDA_CHECK(cudaMemcpy(dst, src, bytes, kind));
}

void zero(void* p, size_t bytes) { GDN2_CUDA_CHECK(cudaMemset(p, 0, bytes)); }

}  // namespace

DeviceMemory make() {
  DeviceMemory m;
  m.alloc = alloc;
  m.copy = copy;
  m.zero = zero;
  return m;
}

}  // namespace gdn2::detail::cuda_hooks
