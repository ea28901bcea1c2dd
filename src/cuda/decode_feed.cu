// The pipelined batch decode's device feed and pinned readback (decode_feed.h).
#include "cuda/decode_feed.h"

#include "cuda/common.cuh"
#include "cuda/stream.h"

namespace gdn2::cuda {

namespace {

__global__ void advance_decode_feed_kernel(int32_t* io, const int32_t* picks, int g, int capacity) {
  const int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (i >= g || io[2 * capacity + i] <= 0) return;
  io[i] = max(picks[i], 0);
  io[capacity + i] += 1;
  io[2 * capacity + i] += 1;
}

}  // namespace

void advance_decode_feed(Tensor& io, const Tensor& picks, int64_t g, int64_t capacity) {
  GDN2_CHECK(io.device() == Device::cuda && io.dtype() == DType::i32 && io.numel() == 3 * capacity &&
                 picks.device() == Device::cuda && picks.dtype() == DType::i32 && picks.numel() >= g && g >= 1 &&
                 g <= capacity,
             ShapeError, "advance_decode_feed: io must be I32 [3 x ", capacity, "] and picks I32 [>= ", g,
             "] on the GPU, got ", io.describe(), " and ", picks.describe());
  constexpr int kThreads = 256;
  const int blocks = static_cast<int>((g + kThreads - 1) / kThreads);
  advance_decode_feed_kernel<<<blocks, kThreads, 0, stream()>>>(static_cast<int32_t*>(io.raw_mut()),
                                                                static_cast<const int32_t*>(picks.raw()),
                                                                static_cast<int>(g), static_cast<int>(capacity));
  GDN2_CUDA_CHECK(cudaGetLastError());
}

struct Readback::Impl {
  void* host = nullptr;
  cudaEvent_t done = nullptr;
  size_t bytes = 0;
  bool pending = false;
};

Readback::Readback(size_t bytes) : impl_(std::make_unique<Impl>()) {
  impl_->bytes = bytes;
  GDN2_CUDA_CHECK(cudaMallocHost(&impl_->host, bytes));
  const cudaError_t st = cudaEventCreateWithFlags(&impl_->done, cudaEventDisableTiming);
  if (st != cudaSuccess) cudaFreeHost(impl_->host);
  GDN2_CUDA_CHECK(st);
}

Readback::~Readback() {
  if (impl_->pending) cudaEventSynchronize(impl_->done);
  cudaEventDestroy(impl_->done);
  cudaFreeHost(impl_->host);
}

void Readback::start(const Tensor& src, size_t bytes) {
  GDN2_CHECK(src.device() == Device::cuda && bytes <= src.nbytes() && bytes <= impl_->bytes, ShapeError,
             "readback of ", bytes, " bytes from ", src.describe(), " into a buffer of ", impl_->bytes);
  GDN2_CUDA_CHECK(cudaMemcpyAsync(impl_->host, src.raw(), bytes, cudaMemcpyDeviceToHost, stream()));
  GDN2_CUDA_CHECK(cudaEventRecord(impl_->done, stream()));
  impl_->pending = true;
}

const void* Readback::wait() {
  if (impl_->pending) {
    impl_->pending = false;
    GDN2_CUDA_CHECK(cudaEventSynchronize(impl_->done));
  }
  return impl_->host;
}

}  // namespace gdn2::cuda
