// Shared CUDA helpers: error checks that throw gdn2::DeviceError, never exit.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <utility>

#include "gdn2/error.h"

#define GDN2_CUDA_CHECK(expr)                                                                            \
  do {                                                                                                    \
    const cudaError_t gdn2_cuda_status_ = (expr);                                                         \
    if (gdn2_cuda_status_ != cudaSuccess)                                                                 \
      ::gdn2::detail::fail<::gdn2::DeviceError>(__FILE__, __LINE__, #expr, "CUDA error: ",                \
                                                cudaGetErrorString(gdn2_cuda_status_));                   \
  } while (0)

namespace gdn2::cuda {

// kernel<<<grid, threads, smem, stream>>>(args...) after raising the kernel's dynamic shared memory limit to smem.
template <class... Params, class... Args>
void launch_with_smem(void (*kernel)(Params...), dim3 grid, int threads, size_t smem, cudaStream_t stream,
                      Args&&... args) {
  GDN2_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
  kernel<<<grid, threads, smem, stream>>>(std::forward<Args>(args)...);
  GDN2_CUDA_CHECK(cudaGetLastError());
}

}  // namespace gdn2::cuda
