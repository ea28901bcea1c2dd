// The GPU work stream of the calling thread: every kernel, copy, allocation and product of the CUDA backend goes on it.
// It is the legacy default stream unless a StreamScope names another (a graph capture's stream, for instance).
#pragma once

#include <cuda_runtime.h>

namespace gdn2::cuda {

cudaStream_t stream();

// Makes `s` this thread's work stream until the scope ends (then the previous one again).
class StreamScope {
 public:
  explicit StreamScope(cudaStream_t s);
  ~StreamScope();
  StreamScope(const StreamScope&) = delete;
  StreamScope& operator=(const StreamScope&) = delete;

 private:
  cudaStream_t previous_;
};

}  // namespace gdn2::cuda
