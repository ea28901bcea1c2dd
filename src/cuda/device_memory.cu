// CUDA memory for gdn2::Tensor: allocation, copies and zero-fill, installed into core through detail::cuda_memory.
#include <atomic>
#include <cstdint>

#include "cuda/common.cuh"
#include "gdn2/tensor.h"

namespace gdn2::detail::cuda_hooks {

namespace {

// Whether the device's default memory pool is in use, set up once to keep freed memory mapped for reuse (as
// frameworks' caching allocators do): large tensors allocated per call (the backward's scratch) then cost no
// cudaMalloc / cudaFree mapping work.
bool pooled() {
  static const bool on = [] {
    int dev = 0, supported = 0;
    if (cudaGetDevice(&dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&supported, cudaDevAttrMemoryPoolsSupported, dev) != cudaSuccess || supported == 0) {
      cudaGetLastError();
      return false;
    }
    cudaMemPool_t pool;
    uint64_t keep = UINT64_MAX;
    if (cudaDeviceGetDefaultMemPool(&pool, dev) != cudaSuccess ||
        cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep) != cudaSuccess) {
      cudaGetLastError();
      return false;
    }
    return true;
  }();
  return on;
}

std::atomic<int64_t> held{0}, held_peak{0};

void count(int64_t bytes) {
  const int64_t now = held.fetch_add(bytes) + bytes;
  int64_t peak = held_peak.load();
  while (now > peak && !held_peak.compare_exchange_weak(peak, now)) {
  }
}

// Memory is handed out on the legacy stream and returned after the device is idle, as cudaFree does: a tensor's
// memory is never reused while a kernel on any stream may still touch it.
std::shared_ptr<void> alloc(size_t bytes) {
  void* p = nullptr;
  const bool pool = pooled();
  cudaError_t st = pool ? cudaMallocAsync(&p, bytes, cudaStreamLegacy) : cudaMalloc(&p, bytes);
  if (st == cudaSuccess && pool) st = cudaStreamSynchronize(cudaStreamLegacy);
  if (st != cudaSuccess) {
    cudaGetLastError();
    GDN2_THROW(DeviceError, "cudaMalloc of ", bytes, " bytes failed: ", cudaGetErrorString(st));
  }
  const auto n = static_cast<int64_t>(bytes);
  count(n);
  if (!pool)
    return std::shared_ptr<void>(p, [n](void* q) {
      cudaFree(q);
      count(-n);
    });
  return std::shared_ptr<void>(p, [n](void* q) {
    cudaDeviceSynchronize();
    cudaFreeAsync(q, cudaStreamLegacy);
    count(-n);
  });
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

namespace gdn2::cuda {

int64_t memory_held() { return detail::cuda_hooks::held.load(); }
int64_t memory_held_peak() { return detail::cuda_hooks::held_peak.load(); }
void memory_reset_peak() { detail::cuda_hooks::held_peak.store(detail::cuda_hooks::held.load()); }

}  // namespace gdn2::cuda
