// Host values into device memory, in the work stream's order. The sources are pageable, so a call returns once the
// values are staged, without waiting for the device (a synchronous cudaMemcpy would drain the GPU at every launch);
// the host vector may go at once.
#pragma once

#include <vector>

#include "cuda/common.cuh"
#include "cuda/stream.h"
#include "gdn2/tensor.h"

namespace gdn2::cuda {

template <class T>
void upload(void* dst, const std::vector<T>& values) {
  if (!values.empty())
    GDN2_CUDA_CHECK(cudaMemcpyAsync(dst, values.data(), values.size() * sizeof(T), cudaMemcpyHostToDevice, stream()));
}

// A device copy of `values` (bytes, U8) for a launch's tables.
template <class T>
Tensor device_copy(const std::vector<T>& values) {
  Tensor t = Tensor::empty({static_cast<int64_t>(values.size() * sizeof(T))}, DType::u8, Device::cuda);
  upload(t.raw_mut(), values);
  return t;
}

}  // namespace gdn2::cuda
