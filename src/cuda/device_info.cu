// CUDA device discovery for backend_available/backend_describe, with a one-kernel self-test of the device.
#include <string>

#include "core/env_switch.h"
#include "cuda/common.cuh"
#include "cuda/stream.h"

namespace gdn2::cuda {

bool pdl_enabled() {
  static const bool on = [] {
    if (!env_switch_on("GDN2_PDL")) return false;
    int dev = 0, major = 0;
    if (cudaGetDevice(&dev) != cudaSuccess) return false;
    return cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) == cudaSuccess && major >= 9;
  }();
  return on;
}

namespace {

__global__ void selftest_kernel(int* out, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i] = 3 * i + 1;
}

// Launches a kernel and checks its result: proves the device, driver and this build's SASS/PTX agree.
bool selftest() {
  constexpr int n = 256;
  int* d = nullptr;
  if (cudaMalloc(&d, n * sizeof(int)) != cudaSuccess) return false;
  selftest_kernel<<<1, n, 0, stream()>>>(d, n);
  int h[n] = {};
  const bool ok = cudaGetLastError() == cudaSuccess && cudaMemcpy(h, d, sizeof(h), cudaMemcpyDeviceToHost) == cudaSuccess;
  cudaFree(d);
  if (!ok) return false;
  for (int i = 0; i < n; ++i)
    if (h[i] != 3 * i + 1) return false;
  return true;
}

}  // namespace

bool device_available() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
    cudaGetLastError();  // clear the sticky "no device" status
    return false;
  }
  static const bool ok = selftest();
  return ok;
}

std::string device_describe() {
  int count = 0;
  const cudaError_t st = cudaGetDeviceCount(&count);
  if (st != cudaSuccess || count == 0) {
    cudaGetLastError();
    return std::string("no usable CUDA device (") + (st != cudaSuccess ? cudaGetErrorString(st) : "0 devices") + ")";
  }
  int dev = 0, runtime = 0, driver = 0;
  GDN2_CUDA_CHECK(cudaGetDevice(&dev));
  cudaDeviceProp prop{};
  GDN2_CUDA_CHECK(cudaGetDeviceProperties(&prop, dev));
  cudaRuntimeGetVersion(&runtime);
  cudaDriverGetVersion(&driver);
  return std::string(prop.name) + ", sm_" + std::to_string(prop.major) + std::to_string(prop.minor) + ", " +
         std::to_string(prop.multiProcessorCount) + " SMs, " +
         std::to_string(prop.totalGlobalMem / (1024 * 1024 * 1024)) + " GiB, " + std::to_string(count) +
         " device(s), runtime " + std::to_string(runtime / 1000) + "." + std::to_string(runtime % 1000 / 10) +
         ", driver " + std::to_string(driver / 1000) + "." + std::to_string(driver % 1000 / 10) +
         (device_available() ? ", self-test ok" : ", self-test FAILED");
}

}  // namespace gdn2::cuda
