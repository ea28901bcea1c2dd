// CUDA graph capture and replay on the thread's work stream.
#include "cuda/graph.h"

#include "cuda/common.cuh"
#include "cuda/stream.h"

namespace gdn2::cuda {

struct Graph::Impl {
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  ~Impl() {
    if (exec != nullptr) cudaGraphExecDestroy(exec);
    if (graph != nullptr) cudaGraphDestroy(graph);
  }
};

Graph::Graph(const std::function<void()>& work) {
  cudaStream_t s = nullptr;
  GDN2_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  auto impl = std::make_shared<Impl>();
  GDN2_CUDA_CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
  try {
    StreamScope scope(s);
    work();
  } catch (...) {
    cudaGraph_t g = nullptr;
    cudaStreamEndCapture(s, &g);
    if (g != nullptr) cudaGraphDestroy(g);
    cudaStreamDestroy(s);
    cudaGetLastError();
    throw;
  }
  const cudaError_t st = cudaStreamEndCapture(s, &impl->graph);
  cudaStreamDestroy(s);
  GDN2_CUDA_CHECK(st);
  GDN2_CUDA_CHECK(cudaGraphInstantiate(&impl->exec, impl->graph, 0));
  impl_ = std::move(impl);
}

void Graph::launch() const {
  GDN2_CHECK(impl_ != nullptr, ValueError, "launch of an empty CUDA graph");
  GDN2_CUDA_CHECK(cudaGraphLaunch(impl_->exec, stream()));
}

}  // namespace gdn2::cuda
