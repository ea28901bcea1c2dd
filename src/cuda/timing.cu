// CUDA timing: events around graph replays of captured calls (no launch gaps), and the copy-bandwidth ceiling.
#include <algorithm>
#include <functional>
#include <vector>

#include "cuda/common.cuh"
#include "cuda/stream.h"

namespace gdn2::cuda {

double time_ms(const std::function<void(void*)>& f, int warmup, int reps, int per_sample) {
  cudaStream_t s;
  GDN2_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  StreamScope scope(s);  // ops called by f enqueue on s as well
  for (int i = 0; i < warmup; ++i) f(s);
  GDN2_CUDA_CHECK(cudaStreamSynchronize(s));
  cudaGraph_t graph;
  cudaGraphExec_t exec;
  GDN2_CUDA_CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
  for (int i = 0; i < per_sample; ++i) f(s);
  GDN2_CUDA_CHECK(cudaStreamEndCapture(s, &graph));
  GDN2_CUDA_CHECK(cudaGraphInstantiate(&exec, graph, 0));
  GDN2_CUDA_CHECK(cudaGraphLaunch(exec, s));
  cudaEvent_t a, b;
  GDN2_CUDA_CHECK(cudaEventCreate(&a));
  GDN2_CUDA_CHECK(cudaEventCreate(&b));
  std::vector<float> ms;
  for (int r = 0; r < reps; ++r) {
    GDN2_CUDA_CHECK(cudaEventRecord(a, s));
    GDN2_CUDA_CHECK(cudaGraphLaunch(exec, s));
    GDN2_CUDA_CHECK(cudaEventRecord(b, s));
    GDN2_CUDA_CHECK(cudaEventSynchronize(b));
    float t = 0;
    GDN2_CUDA_CHECK(cudaEventElapsedTime(&t, a, b));
    ms.push_back(t / static_cast<float>(per_sample));
  }
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  cudaStreamDestroy(s);
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

namespace {
// A plain 16-byte-per-thread copy, as frameworks' copy kernels do (cudaMemcpy D2D runs slower on some drivers).
__global__ void copy_kernel(const int4* __restrict__ x, int4* __restrict__ y, size_t n) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<size_t>(gridDim.x) * blockDim.x)
    y[i] = x[i];
}
}  // namespace

double copy_gbps(size_t bytes) {
  void *x = nullptr, *y = nullptr;
  GDN2_CUDA_CHECK(cudaMalloc(&x, bytes));
  GDN2_CUDA_CHECK(cudaMalloc(&y, bytes));
  GDN2_CUDA_CHECK(cudaMemset(x, 1, bytes));
  const size_t n = bytes / sizeof(int4);
  const double ms = time_ms([&](void* s) {
    copy_kernel<<<132 * 8, 512, 0, static_cast<cudaStream_t>(s)>>>(static_cast<const int4*>(x), static_cast<int4*>(y), n);
  }, 3, 20, 1);
  cudaFree(x);
  cudaFree(y);
  return 2.0 * static_cast<double>(bytes) / (ms * 1e-3) / 1e9;
}

}  // namespace gdn2::cuda
