// Decay gate g = −exp(A_log)·softplus(f + dt_bias): forward vs a loop reference, gradients vs fp64 finite
// differences, both f layouts, extreme inputs without NaN/inf, thread-count determinism and typed errors.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <string>

#include "cpu/op_test_util.h"
#include "gdn2/ops/decay_gate.h"

namespace gdn2 {
namespace {

using test::dot;
using test::finite_diff;
using test::random_tensor;

struct GateCase {
  std::string name;
  Shape f_shape;
  int64_t H, K;
  Shape bias_shape;  // empty: no dt_bias
};

std::vector<GateCase> gate_cases() {
  return {
      {"f[2,3,4,8]_H4_K8_bias[32]", {2, 3, 4, 8}, 4, 8, {32}},
      {"f[2,3,32]_H4_K8_bias[4,8]", {2, 3, 32}, 4, 8, {4, 8}},
      {"f[5,3,5]_H3_K5_nobias", {5, 3, 5}, 3, 5, {}},
      {"f[2,5,3]_H3_K1_bias[3]", {2, 5, 3}, 3, 1, {3}},  // GDN / Qwen3.5: one gate per head
      {"f[2,5,3,1]_H3_K1_bias[3,1]", {2, 5, 3, 1}, 3, 1, {3, 1}},
      {"f[1,1]_H1_K1_bias[1]", {1, 1}, 1, 1, {1}},
      {"f[7]_H1_K7_nobias", {7}, 1, 7, {}},
  };
}

// −exp(A)·softplus(x), written the plain way (fine for moderate inputs).
Tensor gate_reference(const Tensor& f, const Tensor& A_log, const Tensor& dt_bias, int64_t K) {
  const std::vector<double> fv = f.to_f64_vector(), A = A_log.to_f64_vector();
  const std::vector<double> b = dt_bias.defined() ? dt_bias.to_f64_vector() : std::vector<double>();
  const int64_t HK = static_cast<int64_t>(A.size()) * K;
  std::vector<double> g(fv.size());
  for (size_t e = 0; e < fv.size(); ++e) {
    const int64_t j = static_cast<int64_t>(e) % HK;
    const double x = fv[e] + (b.empty() ? 0.0 : b[j]);
    g[e] = -std::exp(A[j / K]) * (x > 20 ? x : std::log1p(std::exp(x)));
  }
  return Tensor::from_vector(f.shape(), g);
}

TEST(DecayGate, ForwardMatchesLoopReference) {
  for (const GateCase& k : gate_cases()) {
    SCOPED_TRACE(k.name);
    const Tensor f = random_tensor(k.f_shape, 1, -6, 6), A = random_tensor({k.H}, 2, -2, 2);
    const Tensor b = k.bias_shape.empty() ? Tensor() : random_tensor(k.bias_shape, 3);
    const Tensor ref = gate_reference(f, A, b, k.K);
    const Tensor g64 = decay_gate_forward(f, A, b, k.K);
    EXPECT_EQ(g64.dtype(), DType::f64);
    EXPECT_EQ(g64.shape(), f.shape());
    EXPECT_LE(rel_rms_error(g64, ref), 1e-14);
    const Tensor g32 = decay_gate_forward(f.to(DType::f32), A.to(DType::f32), b, k.K);
    EXPECT_EQ(g32.dtype(), DType::f32);
    EXPECT_LE(rel_rms_error(g32, ref), 1e-6);
    const Tensor g16 = decay_gate_forward(f.to(DType::bf16), A, b, k.K);  // half input: computed in float
    EXPECT_EQ(g16.dtype(), DType::f32);
    EXPECT_EQ(rel_rms_error(g16, decay_gate_forward(f.to(DType::bf16).to(DType::f32), A, b, k.K)), 0.0);
  }
}

TEST(DecayGate, FlatAndSplitLayoutsAgree) {
  const Tensor f = random_tensor({3, 4, 6}, 5), A = random_tensor({4}, 6), b = random_tensor({4, 6}, 7);
  const Tensor g_split = decay_gate_forward(f, A, b, 6);
  const Tensor g_flat = decay_gate_forward(f.reshape({3, 24}), A, b.reshape({24}), 6);
  EXPECT_EQ(g_flat.shape(), (Shape{3, 24}));
  EXPECT_EQ(rel_rms_error(g_split, g_flat), 0.0);
}

TEST(DecayGate, GradientsMatchFiniteDifferences) {
  for (const GateCase& k : gate_cases()) {
    SCOPED_TRACE(k.name);
    Tensor f = random_tensor(k.f_shape, 11, -4, 4), A = random_tensor({k.H}, 12, -1, 1.5);
    Tensor b = k.bias_shape.empty() ? Tensor() : random_tensor(k.bias_shape, 13);
    const Tensor dg = random_tensor(k.f_shape, 14);
    auto loss = [&]() { return dot(decay_gate_forward(f, A, b, k.K), dg); };
    const DecayGateGrads g = decay_gate_backward(dg, f, A, b, k.K);
    EXPECT_EQ(g.df.shape(), f.shape());
    EXPECT_EQ(g.dA_log.shape(), A.shape());
    EXPECT_EQ(g.ddt_bias.defined(), b.defined());
    EXPECT_LE(rel_rms_error(g.df, finite_diff(f, loss)), 1e-6) << "df";
    EXPECT_LE(rel_rms_error(g.dA_log, finite_diff(A, loss)), 1e-6) << "dA_log";
    if (b.defined()) {
      EXPECT_EQ(g.ddt_bias.shape(), b.shape());
      EXPECT_LE(rel_rms_error(g.ddt_bias, finite_diff(b, loss)), 1e-6) << "ddt_bias";
    }
    // dA_log = Σ dg · g per head
    const std::vector<double> gv = decay_gate_forward(f, A, b, k.K).to_f64_vector(), dgv = dg.to_f64_vector();
    std::vector<double> dA(static_cast<size_t>(k.H), 0.0);
    for (size_t e = 0; e < gv.size(); ++e) dA[(e % (k.H * k.K)) / k.K] += dgv[e] * gv[e];
    EXPECT_LE(rel_rms_error(g.dA_log, Tensor::from_vector({k.H}, dA)), 1e-14);
  }
}

// fla issue #1007: 0·inf = NaN in this backward. A_log = 50 with f = ±200 must stay finite in f32 and f64.
TEST(DecayGate, ExtremeInputsStayFinite) {
  const std::vector<double> fv = {-200, -120, -30, -20.5, -20, 0, 19.9, 20, 20.5, 200};
  const int64_t n = static_cast<int64_t>(fv.size());
  for (DType dt : {DType::f32, DType::f64})
    for (double a : {50.0, -50.0, 0.0}) {
      SCOPED_TRACE(std::string(dtype_name(dt)) + " A_log=" + std::to_string(a));
      const Tensor f = Tensor::from_vector({n, 1}, fv).to(dt), A = Tensor::full({1}, dt, a);
      const Tensor g = decay_gate_forward(f, A, {}, 1);
      EXPECT_TRUE(all_finite(g));
      for (double v : g.to_f64_vector()) EXPECT_LE(v, 0.0);
      const Tensor bias = Tensor::zeros({1}, dt);
      const DecayGateGrads gr = decay_gate_backward(Tensor::full({n, 1}, dt, 1.0), f, A, bias, 1);
      EXPECT_TRUE(all_finite(gr.df));
      EXPECT_TRUE(all_finite(gr.dA_log));
      EXPECT_TRUE(all_finite(gr.ddt_bias));
      // zero cotangents give exactly zero gradients, whatever g is
      const DecayGateGrads z = decay_gate_backward(Tensor::zeros({n, 1}, dt), f, A, bias, 1);
      EXPECT_EQ(rel_rms_error(z.df, Tensor::zeros({n, 1}, dt)), 0.0);
      EXPECT_EQ(rel_rms_error(z.dA_log, Tensor::zeros({1}, dt)), 0.0);
      if (dt == DType::f64) {
        // deep in the tails the log-space forms keep full relative accuracy: g ≈ −exp(A + x) for x ≪ 0,
        // g = −exp(A)·x for x > 20, and df = −exp(A)·sigmoid(x)
        const std::vector<double> gv = g.to_f64_vector(), dfv = gr.df.to_f64_vector();
        EXPECT_NEAR(gv[0] / -std::exp(a - 200), 1.0, 1e-12);
        EXPECT_NEAR(dfv[0] / -std::exp(a - 200), 1.0, 1e-12);
        EXPECT_NEAR(gv[n - 1] / (-std::exp(a) * 200), 1.0, 1e-12);
        EXPECT_NEAR(dfv[n - 1] / -std::exp(a), 1.0, 1e-12);
      }
    }
}

TEST(DecayGate, ReductionsAreDeterministicAcrossThreadCounts) {
  const Shape s{2000, 4, 16};
  const Tensor f = random_tensor(s, 21, -5, 5).to(DType::f32), dg = random_tensor(s, 22).to(DType::f32);
  const Tensor A = random_tensor({4}, 23).to(DType::f32), b = random_tensor({64}, 24).to(DType::f32);
  EXPECT_LE(rel_rms_error(decay_gate_forward(f, A, b, 16), gate_reference(f, A, b, 16)), 1e-6);
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  const DecayGateGrads g1 = decay_gate_backward(dg, f, A, b, 16);
  omp_set_num_threads(3);
  const DecayGateGrads g3 = decay_gate_backward(dg, f, A, b, 16);
  omp_set_num_threads(threads);
  EXPECT_EQ(rel_rms_error(g1.df, g3.df), 0.0);
  EXPECT_EQ(rel_rms_error(g1.dA_log, g3.dA_log), 0.0);
  EXPECT_EQ(rel_rms_error(g1.ddt_bias, g3.ddt_bias), 0.0);
}

TEST(DecayGate, BadArgumentsThrowTypedErrors) {
  const Tensor f = random_tensor({2, 3, 4}, 31), A = random_tensor({3}, 32), b = random_tensor({12}, 33);
  EXPECT_NO_THROW(decay_gate_forward(f, A, b, 4));
  EXPECT_THROW(decay_gate_forward(f, A, b, 3), ShapeError);                          // K mismatch
  EXPECT_THROW(decay_gate_forward(f, random_tensor({2}, 1), {}, 4), ShapeError);      // H mismatch
  EXPECT_THROW(decay_gate_forward(f, A.reshape({3, 1}), b, 4), ShapeError);           // A_log 2-D
  EXPECT_THROW(decay_gate_forward(f, A, random_tensor({3, 3}, 1), 4), ShapeError);    // dt_bias
  EXPECT_THROW(decay_gate_forward(f, A, random_tensor({11}, 1), 4), ShapeError);
  EXPECT_THROW(decay_gate_forward(f, A, b, 0), ValueError);                           // head_dim
  EXPECT_THROW(decay_gate_forward(f.to(DType::i32), A, b, 4), DTypeError);
  EXPECT_THROW(decay_gate_forward(f, A.to(DType::i64), b, 4), DTypeError);
  EXPECT_THROW(decay_gate_forward(Tensor(), A, b, 4), ValueError);
  EXPECT_THROW(decay_gate_backward(random_tensor({2, 3, 3}, 1), f, A, b, 4), ShapeError);  // dg shape
  EXPECT_THROW(decay_gate_backward(Tensor(), f, A, b, 4), ValueError);
}

}  // namespace
}  // namespace gdn2
