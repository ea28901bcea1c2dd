// CUDA memory for gdn2::Tensor: allocation, copies, zero-fill and dtype conversion, installed into core through
// detail::cuda_memory.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <type_traits>

#include "cuda/common.cuh"
#include "cuda/stream.h"
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

// Memory is handed out and returned in the order of the work stream (cuda/stream.h; stream-ordered, as frameworks'
// caching allocators do): a freed tensor's memory is reused only by work enqueued after every kernel already on that
// stream (by default the legacy stream, which blocking streams are ordered with), so neither allocation nor release
// waits for the device. Inside a graph capture the allocations become the graph's own. Work on a non-blocking stream
// (a Gdn2Plan's) joins the work stream before and after its launches
// (plan_run), so it is ordered the same way.
std::shared_ptr<void> alloc(size_t bytes) {
  void* p = nullptr;
  const bool pool = pooled();
  const cudaError_t st = pool ? cudaMallocAsync(&p, bytes, gdn2::cuda::stream()) : cudaMalloc(&p, bytes);
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
    cudaFreeAsync(q, gdn2::cuda::stream());
    count(-n);
  });
}

void copy(void* dst, bool dst_dev, const void* src, bool src_dev, size_t bytes) {
  const cudaMemcpyKind kind = dst_dev ? (src_dev ? cudaMemcpyDeviceToDevice : cudaMemcpyHostToDevice)
                                      : (src_dev ? cudaMemcpyDeviceToHost : cudaMemcpyHostToHost);
  const cudaStream_t s = gdn2::cuda::stream();
  GDN2_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, kind, s));
  // A copy to host memory is done when the call returns. One from host memory (always pageable here) returns once the
  // source is staged, so the caller may free it at once, and the GPU goes on without draining.
  if (!dst_dev) GDN2_CUDA_CHECK(cudaStreamSynchronize(s));
}

void zero(void* p, size_t bytes) { GDN2_CUDA_CHECK(cudaMemsetAsync(p, 0, bytes, gdn2::cuda::stream())); }

void copy_rows(void* dst, bool dst_dev, size_t dst_pitch, const void* src, bool src_dev, size_t src_pitch, size_t width,
               size_t rows) {
  const cudaMemcpyKind kind = dst_dev ? (src_dev ? cudaMemcpyDeviceToDevice : cudaMemcpyHostToDevice)
                                      : (src_dev ? cudaMemcpyDeviceToHost : cudaMemcpyHostToHost);
  const cudaStream_t s = gdn2::cuda::stream();
  GDN2_CUDA_CHECK(
      cudaMemcpy2DAsync(dst, std::max(dst_pitch, width), src, std::max(src_pitch, width), width, rows, kind, s));
  if (!dst_dev || !src_dev) GDN2_CUDA_CHECK(cudaStreamSynchronize(s));
}

template <class T>
__device__ __forceinline__ double load_as_double(const void* p, size_t i) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>)
    return __bfloat162float(static_cast<const T*>(p)[i]);
  else if constexpr (std::is_same_v<T, __half>)
    return __half2float(static_cast<const T*>(p)[i]);
  else
    return static_cast<double>(static_cast<const T*>(p)[i]);
}

template <class T>
__device__ __forceinline__ void store_from_double(void* p, size_t i, double x) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>)
    static_cast<T*>(p)[i] = __double2bfloat16(x);
  else if constexpr (std::is_same_v<T, __half>)
    static_cast<T*>(p)[i] = __double2half(x);
  else
    static_cast<T*>(p)[i] = static_cast<T>(x);
}

// Elementwise conversion through double (exact for every source), rounding once to the destination's nearest value.
template <class S, class D>
__global__ void convert_kernel(const void* src, void* dst, size_t n) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<size_t>(gridDim.x) * blockDim.x)
    store_from_double<D>(dst, i, load_as_double<S>(src, i));
}

template <class F>
void by_float_dtype(DType dt, F&& f) {
  switch (dt) {
    case DType::f64: f(double{}); break;
    case DType::f32: f(float{}); break;
    case DType::f16: f(__half{}); break;
    case DType::bf16: f(__nv_bfloat16{}); break;
    default: GDN2_THROW(DTypeError, "device conversion of ", dtype_name(dt), ": float dtypes only");
  }
}

void convert(const void* src, DType src_dt, void* dst, DType dst_dt, size_t n) {
  if (n == 0) return;
  const unsigned blocks = static_cast<unsigned>(std::min<size_t>((n + 255) / 256, 132 * 16));
  by_float_dtype(src_dt, [&](auto s) {
    by_float_dtype(dst_dt, [&](auto d) {
      convert_kernel<decltype(s), decltype(d)><<<blocks, 256, 0, gdn2::cuda::stream()>>>(src, dst, n);
    });
  });
  GDN2_CUDA_CHECK(cudaGetLastError());
}

}  // namespace

DeviceMemory make() {
  DeviceMemory m;
  m.alloc = alloc;
  m.copy = copy;
  m.zero = zero;
  m.convert = convert;
  m.copy_rows = copy_rows;
  return m;
}

}  // namespace gdn2::detail::cuda_hooks

namespace gdn2::cuda {

int64_t memory_held() { return detail::cuda_hooks::held.load(); }
int64_t memory_held_peak() { return detail::cuda_hooks::held_peak.load(); }
void memory_reset_peak() { detail::cuda_hooks::held_peak.store(detail::cuda_hooks::held.load()); }

namespace {
thread_local cudaStream_t work_stream = cudaStreamLegacy;
}  // namespace

cudaStream_t stream() { return work_stream; }

StreamScope::StreamScope(cudaStream_t s) : previous_(work_stream) { work_stream = s; }
StreamScope::~StreamScope() { work_stream = previous_; }

}  // namespace gdn2::cuda
