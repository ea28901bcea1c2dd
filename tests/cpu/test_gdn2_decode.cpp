// The in-place decode step: token by token it equals the fp64 oracle, on the golden decode case and random ones.
#include <gtest/gtest.h>

#include "gdn2/ops/gdn2_golden.h"
#include "gdn2/ops/gdn2_random.h"

namespace gdn2 {
namespace {

TEST(Gdn2Decode, GoldenDecodeCase) {
  for (const Gdn2GoldenCase& c : gdn2_golden_read(GDN2_TEST_DATA "/gdn2_ops.safetensors")) {
    if (c.name != "pub_decode1") continue;
    Tensor state = c.in.h0.to(DType::f32);
    const Tensor o = gdn2_recurrent_step(c.in, state, c.opt);
    for (const auto& [field, expected] : c.expected) {
      if (field == "o") {
        EXPECT_LE(rel_rms_error(o, expected), 1e-5);
      } else if (field == "ht") {
        EXPECT_LE(rel_rms_error(state, expected), 1e-5);
      }
    }
    return;
  }
  FAIL() << "pub_decode1 not found";
}

TEST(Gdn2Decode, StepByStepEqualsOracle) {
  for (const char* mode : {"gdn2", "kda", "gdn"}) {
    Gdn2RandomSpec spec;
    spec.B = 3, spec.T = 40, spec.H = 2, spec.HV = 4, spec.K = 16, spec.V = 24, spec.seed = 31;
    if (std::string(mode) != "gdn2") spec.b_form = spec.w_form = "head";
    if (std::string(mode) == "gdn") spec.g_form = "head";
    const Gdn2Inputs in = gdn2_random_inputs(spec);
    const Gdn2Options opt = gdn2_random_options(spec);
    const Gdn2Outputs ref = gdn2_recurrent_ref(in, opt);
    Tensor state = in.h0.clone();
    std::vector<double> o_all(static_cast<size_t>(in.v.numel()));
    for (int64_t t = 0; t < spec.T; ++t) {
      const std::vector<double> o = gdn2_recurrent_step(gdn2_inputs_token(in, t), state, opt).to_f64_vector();
      const int64_t row = spec.HV * spec.V;
      for (int64_t b = 0; b < spec.B; ++b)
        std::copy(o.begin() + b * row, o.begin() + (b + 1) * row, o_all.begin() + (b * spec.T + t) * row);
    }
    EXPECT_LE(rel_rms_error(Tensor::from_vector(in.v.shape(), o_all), ref.o), 1e-5) << mode;
    EXPECT_LE(rel_rms_error(state, ref.ht), 1e-5) << mode;
  }
}

TEST(Gdn2Decode, RejectsBadState) {
  Gdn2RandomSpec spec;
  spec.T = 1;
  const Gdn2Inputs in = gdn2_random_inputs(spec);
  Tensor wrong = Tensor::zeros({1, 2, 32, 31}, DType::f32);
  EXPECT_THROW(gdn2_recurrent_step(in, wrong, {}), ShapeError);
  Tensor f64 = Tensor::zeros({1, 2, 32, 32}, DType::f64);
  EXPECT_THROW(gdn2_recurrent_step(in, f64, {}), ShapeError);
  Gdn2RandomSpec two = spec;
  two.T = 2;
  Tensor ok = Tensor::zeros({1, 2, 32, 32}, DType::f32);
  EXPECT_THROW(gdn2_recurrent_step(gdn2_random_inputs(two), ok, {}), ShapeError);
}

}  // namespace
}  // namespace gdn2
