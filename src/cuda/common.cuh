// Shared CUDA helpers: error checks that throw gdn2::DeviceError, never exit.
#pragma once

#include <cuda_runtime.h>

#include "gdn2/error.h"

#define GDN2_CUDA_CHECK(expr)                                                                            \
  do {                                                                                                    \
    const cudaError_t gdn2_cuda_status_ = (expr);                                                         \
    if (gdn2_cuda_status_ != cudaSuccess)                                                                 \
      ::gdn2::detail::fail<::gdn2::DeviceError>(__FILE__, __LINE__, #expr, "CUDA error: ",                \
                                                cudaGetErrorString(gdn2_cuda_status_));                   \
  } while (0)
