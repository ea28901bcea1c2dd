// backend_time_ms for the CPU (wall clock; the CUDA side is src/cuda/timing.cu), and the CUDA memory counters
// (src/cuda/device_memory.cu).
#include <algorithm>
#include <chrono>
#include <vector>

#include "gdn2/backend.h"
#include "gdn2/error.h"

namespace gdn2 {

#ifdef GDN2_WITH_CUDA
namespace cuda {
double time_ms(const std::function<void(void*)>& f, int warmup, int reps, int per_sample);
double copy_gbps(size_t bytes);
int64_t memory_held();
int64_t memory_held_peak();
void memory_reset_peak();
}  // namespace cuda
#endif

double backend_time_ms(Backend b, const std::function<void(void*)>& f, int warmup, int reps, int per_sample) {
  GDN2_CHECK(warmup >= 0 && reps >= 1 && per_sample >= 1, ValueError, "backend_time_ms: bad repetition counts");
  if (b == Backend::cuda) {
    backend_require(b);
#ifdef GDN2_WITH_CUDA
    return cuda::time_ms(f, warmup, reps, per_sample);
#endif
  }
  for (int i = 0; i < warmup; ++i) f(nullptr);
  std::vector<double> ms;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < per_sample; ++i) f(nullptr);
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / per_sample);
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

double cuda_copy_gbps(size_t bytes) {
  backend_require(Backend::cuda);
#ifdef GDN2_WITH_CUDA
  return cuda::copy_gbps(bytes);
#else
  return 0;
#endif
}

#ifdef GDN2_WITH_CUDA
int64_t cuda_memory_held() { return cuda::memory_held(); }
int64_t cuda_memory_held_peak() { return cuda::memory_held_peak(); }
void cuda_memory_reset_peak() { cuda::memory_reset_peak(); }
#else
int64_t cuda_memory_held() { return 0; }
int64_t cuda_memory_held_peak() { return 0; }
void cuda_memory_reset_peak() {}
#endif

}  // namespace gdn2
