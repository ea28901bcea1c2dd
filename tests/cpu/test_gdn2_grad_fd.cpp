// Finite-difference checks in fp64 of the chunk backward and the oracle's BPTT, on every input and gate mode.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "gdn2/ops/decay_gate.h"
#include "gdn2/ops/gdn2_random.h"

namespace gdn2 {
namespace {

double loss(const Gdn2Outputs& out, const Tensor& d_o, const Tensor& dht) {
  const std::vector<double> o = out.o.to_f64_vector(), a = d_o.to_f64_vector();
  const std::vector<double> h = out.ht.to_f64_vector(), b = dht.to_f64_vector();
  double s = 0;
  for (size_t i = 0; i < o.size(); ++i) s += o[i] * a[i];
  for (size_t i = 0; i < h.size(); ++i) s += h[i] * b[i];
  return s;
}

// Central differences of the loss wrt `samples` random elements of one input, against the analytic gradient.
void check_input(Gdn2Inputs in, Tensor Gdn2Inputs::*field, const Tensor& grad, const Gdn2Options& opt,
                 const Tensor& d_o, const Tensor& dht, const char* name, int samples = 12) {
  ASSERT_TRUE(grad.defined()) << name;
  const Tensor original = in.*field;
  ASSERT_EQ(grad.shape(), original.shape()) << name;
  std::vector<double> x = original.to_f64_vector();
  const std::vector<double> g = grad.to_f64_vector();
  double gnorm = 0;
  for (double v : g) gnorm += v * v;
  gnorm = std::sqrt(gnorm / static_cast<double>(g.size())) + 1e-30;
  std::mt19937_64 rng(static_cast<uint64_t>(x.size()) * 31 + 7);
  std::uniform_int_distribution<size_t> pick(0, x.size() - 1);
  const double eps = 1e-6;
  for (int s = 0; s < samples; ++s) {
    const size_t i = pick(rng);
    const double keep = x[i];
    x[i] = keep + eps;
    in.*field = Tensor::from_vector(original.shape(), x);
    const double lp = loss(gdn2_chunk_fwd(in, opt), d_o, dht);
    x[i] = keep - eps;
    in.*field = Tensor::from_vector(original.shape(), x);
    const double lm = loss(gdn2_chunk_fwd(in, opt), d_o, dht);
    x[i] = keep;
    const double fd = (lp - lm) / (2 * eps);
    EXPECT_NEAR(fd, g[i], 1e-6 * gnorm + 1e-7 * std::abs(g[i])) << name << "[" << i << "]";
  }
}

void check_case(Gdn2RandomSpec spec) {
  spec.dtype = DType::f64;
  Gdn2Inputs in = gdn2_random_inputs(spec);
  if (in.h0.defined()) in.h0 = in.h0.to(DType::f64);
  Gdn2Options opt = gdn2_random_options(spec);
  opt.compute = DType::f64;
  opt.chunk_size = 16;  // several chunks in a short sequence
  const auto [d_o, dht] = gdn2_random_cotangents(spec, 99);
  const Gdn2Grads g = gdn2_chunk_bwd(in, opt, d_o, dht);
  const Gdn2Grads ref = gdn2_recurrent_ref_bwd(in, opt, d_o, dht);
  check_input(in, &Gdn2Inputs::q, g.dq, opt, d_o, dht, "q");
  check_input(in, &Gdn2Inputs::k, g.dk, opt, d_o, dht, "k");
  check_input(in, &Gdn2Inputs::v, g.dv, opt, d_o, dht, "v");
  check_input(in, &Gdn2Inputs::g_log, g.dg, opt, d_o, dht, "g");
  if (in.b.defined()) check_input(in, &Gdn2Inputs::b, g.db, opt, d_o, dht, "b");
  if (in.w.defined()) check_input(in, &Gdn2Inputs::w, g.dw, opt, d_o, dht, "w");
  if (in.h0.defined()) check_input(in, &Gdn2Inputs::h0, g.dh0, opt, d_o, dht, "h0");
  // The oracle's BPTT agrees with the finite-difference-checked chunk backward.
  const std::pair<const Tensor*, const Tensor*> pairs[] = {{&g.dq, &ref.dq}, {&g.dk, &ref.dk}, {&g.dv, &ref.dv},
                                                           {&g.dg, &ref.dg}, {&g.db, &ref.db}, {&g.dw, &ref.dw},
                                                           {&g.dh0, &ref.dh0}};
  for (const auto& [a, b] : pairs) {
    ASSERT_EQ(a->defined(), b->defined());
    if (a->defined()) {
      EXPECT_LE(rel_rms_error(*a, *b), 1e-11);
    }
  }
}

TEST(Gdn2GradFd, ChannelGatesGvaL2norm) {
  Gdn2RandomSpec s;
  s.T = 37, s.H = 1, s.HV = 2, s.K = 8, s.V = 6, s.seed = 41;
  check_case(s);
}

TEST(Gdn2GradFd, HeadGatesPerValueHead) {
  Gdn2RandomSpec s;
  s.T = 29, s.H = 1, s.HV = 2, s.K = 8, s.V = 8, s.g_form = "head", s.b_form = "head", s.w_form = "head";
  s.g_heads = 2, s.b_heads = 2, s.seed = 42;
  check_case(s);
}

TEST(Gdn2GradFd, VarlenNegEig) {
  Gdn2RandomSpec s;
  s.seqlens = {19, 1, 24}, s.H = 1, s.HV = 1, s.K = 8, s.V = 5, s.b_max = 2.0, s.seed = 43;
  check_case(s);
}

TEST(Gdn2GradFd, SsdNoH0UnitKeys) {
  Gdn2RandomSpec s;
  s.T = 33, s.H = 1, s.HV = 1, s.K = 6, s.V = 7, s.b_form = "none", s.w_form = "none", s.h0 = false;
  s.l2norm = false, s.seed = 44;
  check_case(s);
}

// The in-op decay gate: g_log holds f, g = -exp(A_log) softplus(f + dt_bias) is formed inside the op. The forward
// equals the call on the formed g bitwise; the gradients of f, A_log and dt_bias pass finite differences.
void check_gate_in_op(Gdn2RandomSpec spec, bool with_dt) {
  spec.dtype = DType::f64;
  Gdn2Inputs in = gdn2_random_inputs(spec);
  if (in.h0.defined()) in.h0 = in.h0.to(DType::f64);
  const bool channel = in.g_log.dim() == 4;
  const int64_t Hg = in.g_log.size(2), per_head = channel ? in.g_log.size(3) : 1;
  std::vector<double> a(static_cast<size_t>(Hg)), dt(static_cast<size_t>(Hg * per_head));
  for (size_t i = 0; i < a.size(); ++i) a[i] = -0.7 + 0.5 * static_cast<double>(i);
  for (size_t i = 0; i < dt.size(); ++i) dt[i] = 0.3 * std::sin(static_cast<double>(i));
  std::vector<double> f = in.g_log.to_f64_vector();
  for (size_t i = 0; i < f.size(); ++i) f[i] = 2.0 * std::cos(0.37 * static_cast<double>(i));  // pre-activations
  Gdn2Inputs gated = in;
  gated.g_log = Tensor::from_vector(in.g_log.shape(), f);
  gated.A_log = Tensor::from_vector({Hg}, a);
  if (with_dt) gated.dt_bias = Tensor::from_vector({Hg * per_head}, dt);
  Gdn2Options opt = gdn2_random_options(spec);
  opt.compute = DType::f64;
  opt.chunk_size = 16;
  Gdn2Inputs formed = gated;
  formed.g_log = decay_gate_forward(gated.g_log, gated.A_log, gated.dt_bias, per_head);
  formed.A_log = formed.dt_bias = Tensor();
  EXPECT_EQ(rel_rms_error(gdn2_chunk_fwd(gated, opt).o, gdn2_chunk_fwd(formed, opt).o), 0.0);
  EXPECT_EQ(rel_rms_error(gdn2_recurrent_ref(gated, opt).o, gdn2_recurrent_ref(formed, opt).o), 0.0);
  const auto [d_o, dht] = gdn2_random_cotangents(spec, 98);
  const Gdn2Grads g = gdn2_chunk_bwd(gated, opt, d_o, dht);
  check_input(gated, &Gdn2Inputs::g_log, g.dg, opt, d_o, dht, "f");
  check_input(gated, &Gdn2Inputs::A_log, g.dA_log, opt, d_o, dht, "A_log", static_cast<int>(Hg));
  if (with_dt) check_input(gated, &Gdn2Inputs::dt_bias, g.ddt_bias, opt, d_o, dht, "dt_bias");
  else EXPECT_FALSE(g.ddt_bias.defined());
  const Gdn2Grads ref = gdn2_recurrent_ref_bwd(gated, opt, d_o, dht);
  EXPECT_LE(rel_rms_error(g.dA_log, ref.dA_log), 1e-11);
}

TEST(Gdn2GradFd, InOpDecayGateChannel) {
  Gdn2RandomSpec s;
  s.T = 37, s.H = 1, s.HV = 2, s.K = 8, s.V = 6, s.seed = 45;
  check_gate_in_op(s, true);
}

TEST(Gdn2GradFd, InOpDecayGatePerHeadNoBias) {
  Gdn2RandomSpec s;
  s.T = 29, s.H = 1, s.HV = 2, s.K = 8, s.V = 8, s.g_form = "head", s.b_form = "head", s.w_form = "head";
  s.g_heads = 2, s.b_heads = 2, s.seed = 46;
  check_gate_in_op(s, false);
}

TEST(Gdn2Contract, InOpDecayGateShapes) {
  Gdn2RandomSpec s;
  Gdn2Inputs in = gdn2_random_inputs(s);
  in.A_log = Tensor::zeros({s.H + 1}, DType::f32);
  EXPECT_THROW(gdn2_chunk_fwd(in, {}), ShapeError);
  in.A_log = Tensor::zeros({s.H}, DType::f32);
  in.dt_bias = Tensor::zeros({s.H * s.K + 1}, DType::f32);
  EXPECT_THROW(gdn2_chunk_fwd(in, {}), ShapeError);
  in.dt_bias = Tensor::zeros({s.H, s.K}, DType::f32);
  EXPECT_NO_THROW(gdn2_chunk_fwd(in, {}));
  in.A_log = Tensor();
  EXPECT_THROW(gdn2_chunk_fwd(in, {}), ValueError);
}

}  // namespace
}  // namespace gdn2
