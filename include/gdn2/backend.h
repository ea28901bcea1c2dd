// Compute backends (CPU always, CUDA when built with it): names, availability and a description for logs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace gdn2 {

enum class Backend { cpu, cuda };

Backend backend_from_name(std::string_view name);  // "cpu" | "cuda"; ValueError otherwise
std::string_view backend_name(Backend b);
bool backend_compiled(Backend b);   // was this build configured with it
bool backend_available(Backend b);  // compiled, and (for CUDA) a working device is present
// One line: threads and SIMD for the CPU; device, compute capability, SMs and memory for CUDA (or why not).
std::string backend_describe(Backend b);
// Throws UnsupportedError saying how to get the backend when it is not available.
void backend_require(Backend b);

// Median milliseconds of one call of f on the backend, after `warmup` calls: CPU by wall clock; CUDA by events
// around graph replays of `per_sample` captured calls (f must only enqueue work on `stream`, given as a
// cudaStream_t cast to void*, which is also the work stream of the ops f calls; f must not wait for the device),
// so that launch gaps are left out.
double backend_time_ms(Backend b, const std::function<void(void* stream)>& f, int warmup = 5, int reps = 20,
                       int per_sample = 1);
// Device-to-device copy bandwidth in GB/s (bytes read + written), measured on `bytes` bytes.
double cuda_copy_gbps(size_t bytes = size_t{1} << 30);
// Bytes of device memory that tensors hold now, and the most they held since the last reset (as torch.cuda's
// memory_allocated and max_memory_allocated). 0 without the CUDA backend.
int64_t cuda_memory_held();
int64_t cuda_memory_held_peak();
void cuda_memory_reset_peak();

// CPU threads the ops use (OpenMP); set_cpu_threads(0) restores the default.
int cpu_threads();
void set_cpu_threads(int n);

}  // namespace gdn2
