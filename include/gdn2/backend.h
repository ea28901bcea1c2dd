// Compute backends (CPU always, CUDA when built with it): names, availability and a description for logs.
#pragma once

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

// CPU threads the ops use (OpenMP); set_cpu_threads(0) restores the default.
int cpu_threads();
void set_cpu_threads(int n);

}  // namespace gdn2
