// The decay gate's CUDA backward against the CPU op on the same inputs: channel-wise and per-head gates, with and
// without dt_bias, bf16 f, row counts that do not divide into the kernel's parts, extreme inputs without NaN/inf,
// determinism, and mixed devices refused.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "cpu/op_test_util.h"
#include "cuda/require_gpu.h"
#include "gdn2/backend.h"
#include "gdn2/ops/decay_gate.h"

namespace gdn2 {
namespace {

using test::random_tensor;

struct Case {
  const char* name;
  Shape f_shape;
  int64_t H, K;
  bool bias;
  DType f_dtype;
};

TEST(DecayGateCuda, BackwardMatchesCpu) {
  REQUIRE_GPU();
  const Case cases[] = {
      {"channel_bias", {3, 77, 4, 16}, 4, 16, true, DType::f32},
      {"channel_nobias", {1, 130, 64}, 4, 16, false, DType::f32},
      {"head_bias", {2, 1001, 6}, 6, 1, true, DType::f32},
      {"channel_bias_bf16", {1, 300, 2, 128}, 2, 128, true, DType::bf16},
      {"one_row", {1, 3, 5}, 3, 5, true, DType::f32},
  };
  uint64_t seed = 70;
  for (const Case& c : cases) {
    const Tensor f = random_tensor(c.f_shape, ++seed, -6.0, 6.0).to(c.f_dtype);
    const Tensor dg = random_tensor(c.f_shape, ++seed).to(DType::f32);
    const Tensor A = random_tensor({c.H}, ++seed, -2.0, 2.0).to(DType::f32);
    const Tensor bias = c.bias ? random_tensor({c.H * c.K}, ++seed).to(DType::f32) : Tensor();
    const DecayGateGrads ref = decay_gate_backward(dg, f, A, bias, c.K);
    const DecayGateGrads got = decay_gate_backward(dg.to(Device::cuda), f.to(Device::cuda), A.to(Device::cuda),
                                                   bias.defined() ? bias.to(Device::cuda) : bias, c.K);
    ASSERT_EQ(got.df.shape(), f.shape()) << c.name;
    EXPECT_EQ(got.df.device(), Device::cuda) << c.name;
    EXPECT_LE(rel_rms_error(got.df, ref.df), 1e-5) << c.name;
    EXPECT_LE(rel_rms_error(got.dA_log, ref.dA_log), 1e-5) << c.name;
    if (c.bias) {
      ASSERT_TRUE(got.ddt_bias.defined()) << c.name;
      EXPECT_EQ(got.ddt_bias.shape(), bias.shape()) << c.name;
      EXPECT_LE(rel_rms_error(got.ddt_bias, ref.ddt_bias), 1e-5) << c.name;
    } else {
      EXPECT_FALSE(got.ddt_bias.defined()) << c.name;
    }
    const DecayGateGrads again = decay_gate_backward(dg.to(Device::cuda), f.to(Device::cuda), A.to(Device::cuda),
                                                     bias.defined() ? bias.to(Device::cuda) : bias, c.K);
    const Tensor a = got.dA_log.cpu(), b = again.dA_log.cpu();
    EXPECT_EQ(std::memcmp(a.raw(), b.raw(), a.nbytes()), 0) << c.name << ": deterministic";
  }
}

TEST(DecayGateCuda, ExtremeInputsStayFinite) {
  REQUIRE_GPU();
  // Huge A_log with softplus underflowing, f far past both softplus thresholds, zero upstream gradients.
  const Tensor f = Tensor::from_vector({2, 4}, std::vector<double>{-200.0, -30.0, 30.0, 200.0, 0.0, -1e4, 1e4, 5.0});
  const Tensor dg = Tensor::from_vector({2, 4}, std::vector<double>{0.0, 1.0, -1.0, 0.0, 1.0, 0.0, 2.0, 1.0});
  const Tensor A = Tensor::from_vector({4}, std::vector<double>{80.0, 80.0, -80.0, 3.0});
  const DecayGateGrads g = decay_gate_backward(dg.to(DType::f32).to(Device::cuda), f.to(DType::f32).to(Device::cuda),
                                               A.to(DType::f32).to(Device::cuda), Tensor(), 1);
  for (const Tensor* t : {&g.df, &g.dA_log})
    for (double x : t->to_f64_vector()) EXPECT_TRUE(std::isfinite(x)) << x;
  const DecayGateGrads ref = decay_gate_backward(dg.to(DType::f32), f.to(DType::f32), A.to(DType::f32), Tensor(), 1);
  EXPECT_LE(rel_rms_error(g.df, ref.df), 1e-5);
}

TEST(DecayGateCuda, MixedDevicesAreRefused) {
  REQUIRE_GPU();
  const Tensor f = random_tensor({4, 8}, 3).to(DType::f32);
  const Tensor A = random_tensor({1}, 4).to(DType::f32);
  EXPECT_THROW(decay_gate_backward(f.to(Device::cuda), f.to(Device::cuda), A, Tensor(), 8), ShapeError);
  EXPECT_THROW(decay_gate_backward(f, f.to(Device::cuda), A.to(Device::cuda), Tensor(), 8), ShapeError);
}

}  // namespace
}  // namespace gdn2
