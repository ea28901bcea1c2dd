// The in-place decode step: token by token it equals the fp64 oracle, on the golden decode case and random ones.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <utility>

#include "cpu/gate_logits.h"
#include "gdn2/ops/dense.h"
#include "gdn2/ops/gdn2_golden.h"
#include "gdn2/ops/gdn2_random.h"

namespace gdn2 {
namespace {

TEST(Gdn2Decode, GoldenDecodeCase) {
  for (const Gdn2GoldenCase& c : gdn2_golden_read(GDN2_GOLDEN_OPS)) {
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

// Gdn2Options::gates_logits: b and w given as logits equal the op called with their sigmoid, bit for bit on the CPU
// (the op applies the same sigmoid op first), in the step and the chunk forward, with channel gates and with w the
// same tensor as b; the backward refuses it.
TEST(Gdn2Decode, GateLogitsAreTheirSigmoid) {
  for (const char* mode : {"gdn2", "gdn"}) {
    Gdn2RandomSpec spec;
    spec.B = 2, spec.T = 5, spec.H = 2, spec.HV = 4, spec.K = 16, spec.V = 24, spec.seed = 41;
    if (std::string(mode) == "gdn") spec.H = 4, spec.b_form = spec.w_form = spec.g_form = "head";  // w is b: HV heads
    const auto [logits, gates] = test::gate_logit_inputs(spec, std::string(mode) == "gdn");
    const Gdn2Options opt = gdn2_random_options(spec);
    Gdn2Options opt_logits = opt;
    opt_logits.gates_logits = true;

    const Gdn2Outputs want = gdn2_chunk_fwd(gates, opt), got = gdn2_chunk_fwd(logits, opt_logits);
    EXPECT_EQ(got.o.to_f64_vector(), want.o.to_f64_vector()) << mode;
    EXPECT_EQ(got.ht.to_f64_vector(), want.ht.to_f64_vector()) << mode;
    Tensor state = logits.h0.clone(), state_want = logits.h0.clone();
    const Tensor o = gdn2_recurrent_step(gdn2_inputs_token(logits, 0), state, opt_logits);
    const Tensor o_want = gdn2_recurrent_step(gdn2_inputs_token(gates, 0), state_want, opt);
    EXPECT_EQ(o.to_f64_vector(), o_want.to_f64_vector()) << mode;
    EXPECT_EQ(state.to_f64_vector(), state_want.to_f64_vector()) << mode;

    const Tensor d_o = Tensor::zeros(want.o.shape(), DType::f32);
    EXPECT_THROW(gdn2_chunk_bwd(logits, opt_logits, d_o, Tensor()), ValueError) << mode;
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
  Gdn2RandomSpec too_long = spec;
  too_long.T = kGdn2StepMaxTokens + 1;
  Tensor ok = Tensor::zeros({1, 2, 32, 32}, DType::f32);
  EXPECT_THROW(gdn2_recurrent_step(gdn2_random_inputs(too_long), ok, {}), ShapeError);
  EXPECT_THROW(Gdn2Plan(gdn2_random_inputs(too_long), {}, Gdn2Kernel::recurrent, &ok), ShapeError);
  EXPECT_THROW(Gdn2Plan(in, {}, Gdn2Kernel::chunk, &ok), ValueError);
}

// Short runs in place (speculative verify): runs of 5, 1 and 34 tokens, and a plan of 3-token runs, equal the
// oracle over the whole sequence.
TEST(Gdn2Decode, MultiTokenRunsEqualOracle) {
  Gdn2RandomSpec spec;
  spec.B = 2, spec.T = 40, spec.H = 2, spec.HV = 4, spec.K = 16, spec.V = 24, spec.seed = 33;
  const Gdn2Inputs in = gdn2_random_inputs(spec);
  const Gdn2Options opt = gdn2_random_options(spec);
  const Gdn2Outputs ref = gdn2_recurrent_ref(in, opt);
  Tensor state = in.h0.clone();
  std::vector<Tensor> outs;
  for (auto [t0, n] : {std::pair<int64_t, int64_t>{0, 5}, {5, 1}, {6, 34}})
    outs.push_back(gdn2_recurrent_step(gdn2_inputs_tokens(in, t0, n), state, opt));
  EXPECT_LE(rel_rms_error(state, ref.ht), 1e-5);
  const int64_t row = spec.HV * spec.V;
  std::vector<double> o_all(static_cast<size_t>(in.v.numel()));
  int64_t t0 = 0;
  for (const Tensor& o : outs) {
    const std::vector<double> x = o.to_f64_vector();
    const int64_t n = o.size(1);
    for (int64_t b = 0; b < spec.B; ++b)
      std::copy(x.begin() + b * n * row, x.begin() + (b + 1) * n * row, o_all.begin() + (b * spec.T + t0) * row);
    t0 += n;
  }
  EXPECT_LE(rel_rms_error(Tensor::from_vector(in.v.shape(), o_all), ref.o), 1e-5);

  Tensor planned = in.h0.clone();
  Gdn2Inputs run = gdn2_inputs_tokens(in, 0, 3);
  Gdn2Plan plan(run, opt, Gdn2Kernel::recurrent, &planned);
  for (int64_t t = 0; t + 3 <= spec.T; t += 3) {
    const Gdn2Inputs next = gdn2_inputs_tokens(in, t, 3);  // same shapes: overwrite the planned inputs' memory
    for (auto [dst, src] : {std::pair{&run.q, &next.q}, {&run.k, &next.k}, {&run.v, &next.v}, {&run.g_log, &next.g_log},
                            {&run.b, &next.b}, {&run.w, &next.w}})
      std::memcpy(dst->raw_mut(), src->raw(), src->nbytes());
    plan.run();
  }
  const Gdn2Outputs ref39 = gdn2_recurrent_ref([&] {
    Gdn2Inputs p = gdn2_inputs_tokens(in, 0, 39);
    p.h0 = in.h0;
    return p;
  }(), opt);
  EXPECT_LE(rel_rms_error(planned, ref39.ht), 1e-5);
}

// A packed batch steps in place too: every sequence its own length (0 included), state [N, HV, K, V].
TEST(Gdn2Decode, PackedRunsEqualOracle) {
  Gdn2RandomSpec spec;
  spec.seqlens = {3, 0, 7, 1}, spec.H = 1, spec.HV = 2, spec.K = 16, spec.V = 8, spec.seed = 34;
  const Gdn2Inputs in = gdn2_random_inputs(spec);
  const Gdn2Options opt = gdn2_random_options(spec);
  const Gdn2Outputs ref = gdn2_recurrent_ref(in, opt);
  Tensor state = in.h0.clone();
  const Tensor o = gdn2_recurrent_step(in, state, opt);
  EXPECT_LE(rel_rms_error(o, ref.o), 1e-5);
  EXPECT_LE(rel_rms_error(state, ref.ht), 1e-5);
}

}  // namespace
}  // namespace gdn2
