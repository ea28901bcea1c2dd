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

// Programmatic dependent launch (sm_90). A kernel launched with cudaLaunchAttributeProgrammaticStreamSerialization may
// start while the kernel before it in the stream still runs; it must call pdl_wait() before it reads what that kernel
// writes (or writes what it reads). A kernel calls pdl_trigger() to let the one after it start early. Both are no-ops
// in other launches.
__device__ __forceinline__ void pdl_wait() { asm volatile("griddepcontrol.wait;\n" ::: "memory"); }
__device__ __forceinline__ void pdl_trigger() { asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory"); }

// A hint that the 128-byte line holding p will be read soon: brought into L2, nothing waits for it.
__device__ __forceinline__ void prefetch_l2(const void* p) { asm volatile("prefetch.global.L2 [%0];\n" ::"l"(p)); }

// Whether launches may use programmatic dependent launch: on unless GDN2_PDL=0 in the environment (read once).
bool pdl_enabled();

// kernel<<<grid, threads, smem, stream>>>(args...) after raising the kernel's dynamic shared memory limit to smem.
template <class... Params, class... Args>
void launch_with_smem(void (*kernel)(Params...), dim3 grid, int threads, size_t smem, cudaStream_t stream,
                      Args&&... args) {
  GDN2_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
  kernel<<<grid, threads, smem, stream>>>(std::forward<Args>(args)...);
  GDN2_CUDA_CHECK(cudaGetLastError());
}

}  // namespace gdn2::cuda
