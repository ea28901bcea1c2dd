// CUDA timing and the memory counters (no CUDA headers here): src/cuda/timing.cu and src/cuda/device_memory.cu.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>

namespace gdn2::cuda {

// Median milliseconds of one call of f (backend_time_ms's CUDA side, gdn2/backend.h): f enqueues its work on the
// stream it is given (a cudaStream_t as void*), timed by events around graph replays of per_sample captured calls.
double time_ms(const std::function<void(void*)>& f, int warmup, int reps, int per_sample);
double copy_gbps(size_t bytes);
int64_t memory_held();
int64_t memory_held_peak();
void memory_reset_peak();

}  // namespace gdn2::cuda
