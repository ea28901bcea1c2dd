// CPU elementwise kernels (activations, SwiGLU, products, in-place add/scale) over contiguous F32/F64 arrays.
#pragma once

#include <cstdint>

#include "cpu/parallel.h"
#include "cpu/scalar_math.h"

namespace gdn2::cpu {

// out[i] = f(i) for i in [0, n), in parallel when large.
template <class F>
void for_each_index(int64_t n, F&& f) {
#pragma omp parallel for schedule(static) if (worth_parallel(n * 4))
  for (int64_t i = 0; i < n; ++i) f(i);
}

}  // namespace gdn2::cpu
