// CPU parallel helpers: when a loop is worth an OpenMP team, and deterministic ordered parallel sums.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

namespace gdn2::cpu {

// Loops with less work than this (in multiply-adds, roughly) run on the calling thread: a team costs more.
inline constexpr int64_t kParallelMinWork = int64_t{1} << 15;
inline bool worth_parallel(int64_t work) { return work >= kParallelMinWork; }

// Splits items [0, n) into at most `max_chunks` contiguous chunks (a function of n alone, never of the thread
// count), runs body(begin, end, partial) for each chunk with its own zeroed partial of `width` values, in
// parallel when `parallel`, then writes out[j] = Σ_chunks partial[j] in chunk order. The result is bitwise the
// same for any thread count.
template <class T, class Body>
void ordered_reduce(int64_t n, int64_t width, T* out, bool parallel, Body body, int64_t max_chunks = 64) {
  const int64_t chunk = std::max<int64_t>(1, (n + max_chunks - 1) / max_chunks);
  const int64_t chunks = n == 0 ? 0 : (n + chunk - 1) / chunk;
  std::vector<T> partial(static_cast<size_t>(chunks * width), T(0));
#pragma omp parallel for schedule(dynamic, 1) if (parallel)
  for (int64_t k = 0; k < chunks; ++k) body(k * chunk, std::min(n, (k + 1) * chunk), partial.data() + k * width);
  for (int64_t j = 0; j < width; ++j) {
    T s = T(0);
    for (int64_t k = 0; k < chunks; ++k) s += partial[static_cast<size_t>(k * width + j)];
    out[j] = s;
  }
}

}  // namespace gdn2::cpu
