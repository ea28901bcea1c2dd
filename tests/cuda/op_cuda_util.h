// Helpers for the CUDA op tests: inputs representable in a GPU dtype, their GPU copies, and the SPEC §6 budgets of a
// GPU op (fp32 arithmetic) against the CPU op on the same values.
#pragma once

#include <gtest/gtest.h>

#include "cpu/op_test_util.h"
#include "gdn2/tensor.h"

namespace gdn2::test {

// Budgets (SPEC §6): fp32 arithmetic either way; low-precision outputs round once (bf16 2^-9, f16 2^-12 relative).
inline double gpu_budget(DType dt) { return dt == DType::f32 ? 2e-5 : dt == DType::bf16 ? 8e-3 : 2e-3; }

// Values representable in dt, as F32 on the CPU (the reference's input).
inline Tensor held(const Shape& s, uint64_t seed, DType dt, double lo = -1, double hi = 1) {
  return random_tensor(s, seed, lo, hi).to(dt).to(DType::f32);
}
// t in dt on the GPU; undefined stays undefined.
inline Tensor gpu(const Tensor& t, DType dt) { return t.defined() ? t.to(dt).to(Device::cuda) : Tensor(); }

inline const DType kGpuTypes[] = {DType::f32, DType::bf16, DType::f16};

}  // namespace gdn2::test

#define EXPECT_CLOSE(got, want, dt, what) \
  EXPECT_LE(rel_rms_error((got), (want)), ::gdn2::test::gpu_budget(dt)) << (what) << " " << dtype_name(dt)
