// Backend names and the CPU side of backend queries; the CUDA side lives in src/cuda/device_info.cu.
#include "gdn2/backend.h"

#include <omp.h>

#include <thread>

#include "gdn2/error.h"

namespace gdn2 {

#ifdef GDN2_WITH_CUDA
namespace cuda {
bool device_available();
std::string device_describe();
}  // namespace cuda
#endif

Backend backend_from_name(std::string_view name) {
  if (name == "cpu") return Backend::cpu;
  if (name == "cuda") return Backend::cuda;
  GDN2_THROW(ValueError, "unknown backend '", name, "' (expected cpu or cuda)");
}

std::string_view backend_name(Backend b) { return b == Backend::cpu ? "cpu" : "cuda"; }

bool backend_compiled(Backend b) {
#ifdef GDN2_WITH_CUDA
  return true;
#else
  return b == Backend::cpu;
#endif
}

bool backend_available(Backend b) {
  if (b == Backend::cpu) return true;
#ifdef GDN2_WITH_CUDA
  return cuda::device_available();
#else
  return false;
#endif
}

std::string backend_describe(Backend b) {
  if (b == Backend::cpu) {
    std::string simd =
#if defined(__AVX512F__)
        "AVX-512";
#elif defined(__AVX2__)
        "AVX2";
#elif defined(__SSE2__)
        "SSE2";
#else
        "scalar";
#endif
    return "cpu: " + std::to_string(cpu_threads()) + " threads (OpenMP), " + simd + ", " +
           std::to_string(std::thread::hardware_concurrency()) + " hardware threads";
  }
#ifdef GDN2_WITH_CUDA
  return "cuda: " + cuda::device_describe();
#else
  return "cuda: not built (configure with --preset cuda or -DGDN2_CUDA=ON)";
#endif
}

void backend_require(Backend b) {
  if (backend_available(b)) return;
  GDN2_CHECK(backend_compiled(b), UnsupportedError, "this gdn2 was built without the ", backend_name(b),
             " backend: configure with --preset cuda (or -DGDN2_CUDA=ON) on a machine with nvcc");
  GDN2_THROW(UnsupportedError, "backend ", backend_name(b), " is not available here: ", backend_describe(b));
}

int cpu_threads() { return omp_get_max_threads(); }

void set_cpu_threads(int n) {
  static const int default_threads = omp_get_max_threads();
  GDN2_CHECK(n >= 0 && n <= 4096, ValueError, "thread count must be in [0, 4096], got ", n);
  omp_set_num_threads(n == 0 ? default_threads : n);
}

}  // namespace gdn2
