// The CUDA linear layer (cuBLASLt) against the CPU op on the same values: F32, BF16 and F16 inputs, odd shapes
// (leading dimensions that are not multiples of 8), with and without bias; the backward's dx, the accumulated
// parameter gradients (F32 master gradients of low-precision layers, and x's dtype) and bad calls refused.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>

#include "cpu/op_test_util.h"
#include "cuda/require_gpu.h"
#include "gdn2/backend.h"
#include "gdn2/ops/dense.h"

namespace gdn2 {
namespace {

using test::random_tensor;

struct LinearCase {
  const char* name;
  Shape x_shape;
  int64_t out;
  bool bias;
};

// Budgets (SPEC §6): the products accumulate in fp32 either way; low-precision outputs round once to their type.
double budget_for(DType dt) { return dt == DType::f32 ? 1e-5 : dt == DType::bf16 ? 8e-3 : 2e-3; }

TEST(DenseCuda, LinearMatchesCpu) {
  REQUIRE_GPU();
  const LinearCase cases[] = {
      {"odd", {3, 7, 33}, 45, true},
      {"wide", {1, 64, 128}, 256, false},
      {"one_in", {5, 1}, 9, true},
      {"one_row", {1, 1, 96}, 17, true},
      {"model", {2, 300, 512}, 1024, true},
  };
  uint64_t seed = 100;
  for (const LinearCase& c : cases) {
    for (DType dt : {DType::f32, DType::bf16, DType::f16}) {
      const int64_t in = c.x_shape.back();
      // The values each dtype holds, in F32 for the CPU reference.
      const Tensor x = random_tensor(c.x_shape, ++seed).to(dt).to(DType::f32);
      const Tensor w = random_tensor({c.out, in}, ++seed, -0.5, 0.5).to(dt).to(DType::f32);
      const Tensor b = c.bias ? random_tensor({c.out}, ++seed).to(dt).to(DType::f32) : Tensor();
      Shape ys = c.x_shape;
      ys.back() = c.out;
      const Tensor dy = random_tensor(ys, ++seed).to(dt).to(DType::f32);
      auto gpu = [&](const Tensor& t) { return t.defined() ? t.to(dt).to(Device::cuda) : Tensor(); };

      const Tensor y = linear_forward(gpu(x), gpu(w), gpu(b));
      const Tensor y_ref = linear_forward(x, w, b);
      ASSERT_EQ(y.dtype(), dt);
      ASSERT_EQ(y.shape(), y_ref.shape());
      const double ey = rel_rms_error(y.to(Device::cpu).to(DType::f32), y_ref);

      // Gradients accumulate into what they hold: start them from random values.
      const Tensor dw0 = random_tensor({c.out, in}, ++seed).to(DType::f32);
      const Tensor db0 = random_tensor({c.out}, ++seed).to(DType::f32);
      Tensor dw_ref = dw0.clone(), db_ref = db0.clone();
      const Tensor dx_ref = linear_backward(dy, x, w, &dw_ref, c.bias ? &db_ref : nullptr);
      Tensor dw = dw0.to(Device::cuda), db = db0.to(Device::cuda);  // F32 master gradients
      const Tensor dx = linear_backward(gpu(dy), gpu(x), gpu(w), &dw, c.bias ? &db : nullptr);
      ASSERT_EQ(dx.dtype(), dt);
      const double edx = rel_rms_error(dx.to(Device::cpu).to(DType::f32), dx_ref);
      const double edw = rel_rms_error(dw.to(Device::cpu), dw_ref);
      const double edb = c.bias ? rel_rms_error(db.to(Device::cpu), db_ref) : 0.0;
      std::printf("[ errors   ] linear %s %s: y %.2e dx %.2e dw %.2e db %.2e\n", c.name,
                  std::string(dtype_name(dt)).c_str(), ey, edx, edw, edb);
      EXPECT_LE(ey, budget_for(dt)) << c.name;
      EXPECT_LE(edx, budget_for(dt)) << c.name;
      EXPECT_LE(edw, 1e-5) << c.name << ": fp32 accumulation of the same products";
      EXPECT_LE(edb, 1e-5) << c.name;

      if (dt != DType::f32) {  // parameter gradients in x's dtype: the accumulated sum rounded once
        Tensor dw_low = gpu(dw0);
        linear_backward(gpu(dy), gpu(x), gpu(w), &dw_low, nullptr);
        EXPECT_LE(rel_rms_error(dw_low.to(Device::cpu).to(DType::f32), dw_ref), 2 * budget_for(dt)) << c.name;
      }
    }
  }
}

TEST(DenseCuda, LinearRefusesBadCalls) {
  REQUIRE_GPU();
  auto f32 = [](const Shape& s, uint64_t seed) { return random_tensor(s, seed).to(DType::f32); };
  const Tensor x = f32({4, 8}, 1).to(Device::cuda), w = f32({6, 8}, 2).to(Device::cuda);
  const Tensor dy = f32({4, 6}, 3).to(Device::cuda);
  EXPECT_THROW(linear_forward(x, w.to(Device::cpu)), ShapeError);                       // mixed devices
  EXPECT_THROW(linear_forward(x.to(DType::bf16), w), DTypeError);                      // weight not in x's dtype
  EXPECT_THROW(linear_forward(x.to(DType::f64), w.to(DType::f64)), DTypeError);        // F64 on the GPU
  EXPECT_THROW(linear_forward(x, f32({6, 7}, 4).to(Device::cuda)), ShapeError);  // in mismatch
  Tensor dw_bad = random_tensor({6, 8}, 5).to(Device::cuda);  // F64
  EXPECT_THROW(linear_backward(dy, x, w, &dw_bad, nullptr), DTypeError);
  Tensor dw_cpu = f32({6, 8}, 6);
  EXPECT_THROW(linear_backward(dy, x, w, &dw_cpu, nullptr), ShapeError);
}

}  // namespace
}  // namespace gdn2
