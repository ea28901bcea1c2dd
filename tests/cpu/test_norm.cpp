// L2 norm and gated RMSNorm: forward vs loop references, every gradient vs fp64 finite differences, the weight
// gradient's thread-count determinism, dtypes and typed errors for bad arguments.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <string>

#include "cpu/op_test_util.h"
#include "gdn2/ops/dense.h"
#include "gdn2/ops/norm.h"

namespace gdn2 {
namespace {

using test::dot;
using test::finite_diff;
using test::random_tensor;

const Shape kShapes[] = {{3, 5, 7}, {2, 1}, {1, 1}, {4, 13}, {2, 3, 2, 9}};

std::string shape_name(const Shape& s) { return "x" + shape_str(s); }

// With D = 1 a norm is nearly sign(x) and its gradient ~eps/|x|^3 drowns in finite-difference rounding; a larger
// eps keeps that case a meaningful gradient check.
double grad_check_eps(const Shape& s, double eps) { return s.back() == 1 ? 0.05 : eps; }

// ---- L2 norm

Tensor l2_reference(const Tensor& x, double eps) {
  const int64_t D = x.size(-1), rows = x.numel() / D;
  std::vector<double> v = x.to_f64_vector();
  for (int64_t r = 0; r < rows; ++r) {
    double ss = 0;
    for (int64_t d = 0; d < D; ++d) ss += v[r * D + d] * v[r * D + d];
    for (int64_t d = 0; d < D; ++d) v[r * D + d] /= std::sqrt(ss + eps);
  }
  return Tensor::from_vector(x.shape(), v);
}

TEST(L2Norm, ForwardMatchesLoopReference) {
  for (const Shape& s : kShapes) {
    SCOPED_TRACE(shape_name(s));
    const Tensor x = random_tensor(s, 3);
    const L2NormResult r64 = l2_norm_forward(x);
    EXPECT_EQ(r64.y.dtype(), DType::f64);
    EXPECT_EQ(r64.rstd.shape(), Shape(s.begin(), s.end() - 1));
    EXPECT_LE(rel_rms_error(r64.y, l2_reference(x, 1e-6)), 1e-15);
    const L2NormResult r32 = l2_norm_forward(x.to(DType::f32), 1e-3);
    EXPECT_EQ(r32.y.dtype(), DType::f32);
    EXPECT_LE(rel_rms_error(r32.y, l2_reference(x, 1e-3)), 1e-6);
  }
  const L2NormResult z = l2_norm_forward(Tensor::zeros({2, 4}, DType::f32));  // eps keeps a zero row finite
  EXPECT_TRUE(all_finite(z.y));
  EXPECT_EQ(rel_rms_error(z.y, Tensor::zeros({2, 4}, DType::f32)), 0.0);
}

TEST(L2Norm, GradientMatchesFiniteDifferences) {
  for (const Shape& s : kShapes) {
    SCOPED_TRACE(shape_name(s));
    Tensor x = random_tensor(s, 5);
    const Tensor dy = random_tensor(s, 7);
    const double eps = grad_check_eps(s, 1e-6);
    auto loss = [&]() { return dot(l2_norm_forward(x, eps).y, dy); };
    const L2NormResult r = l2_norm_forward(x, eps);
    const Tensor dx = l2_norm_backward(dy, r.y, r.rstd);
    EXPECT_EQ(dx.shape(), x.shape());
    EXPECT_EQ(dx.dtype(), DType::f64);
    EXPECT_LE(rel_rms_error(dx, finite_diff(x, loss)), 1e-6);
  }
}

// ---- Gated RMSNorm

struct RmsCase {
  bool weight, gate;
  RmsNormOptions opt;
  std::string name() const {
    return std::string(weight ? (opt.zero_centred ? "weight(1+w)" : "weight") : "noweight") +
           (gate ? (opt.gate_activation == NormGateActivation::sigmoid ? "_sigmoid" : "_silu") : "_nogate");
  }
};

std::vector<RmsCase> rms_cases() {
  std::vector<RmsCase> cases;
  for (bool weight : {false, true})
    for (int gate = 0; gate < 3; ++gate)
      for (bool zc : {false, true}) {
        if (zc && !weight) continue;
        RmsNormOptions opt;
        opt.zero_centred = zc;
        opt.gate_activation = gate == 2 ? NormGateActivation::silu : NormGateActivation::sigmoid;
        cases.push_back({weight, gate != 0, opt});
      }
  return cases;
}

Tensor rms_reference(const Tensor& x, const Tensor& weight, const Tensor& gate, const RmsNormOptions& opt) {
  const int64_t D = x.size(-1), rows = x.numel() / D;
  std::vector<double> v = x.to_f64_vector();
  const std::vector<double> w = weight.defined() ? weight.to_f64_vector() : std::vector<double>();
  const std::vector<double> g = gate.defined() ? gate.to_f64_vector() : std::vector<double>();
  for (int64_t r = 0; r < rows; ++r) {
    double ss = 0;
    for (int64_t d = 0; d < D; ++d) ss += v[r * D + d] * v[r * D + d];
    const double rstd = 1.0 / std::sqrt(ss / D + opt.eps);
    for (int64_t d = 0; d < D; ++d) {
      double o = v[r * D + d] * rstd;
      if (!w.empty()) o *= opt.zero_centred ? 1.0 + w[d] : w[d];
      if (!g.empty()) {
        const double z = g[r * D + d], sig = 1.0 / (1.0 + std::exp(-z));
        o *= opt.gate_activation == NormGateActivation::sigmoid ? sig : z * sig;
      }
      v[r * D + d] = o;
    }
  }
  return Tensor::from_vector(x.shape(), v);
}

TEST(RmsNorm, ForwardMatchesLoopReference) {
  for (const RmsCase& k : rms_cases())
    for (const Shape& s : kShapes) {
      SCOPED_TRACE(k.name() + " " + shape_name(s));
      const Tensor x = random_tensor(s, 11), gate = k.gate ? random_tensor(s, 12, -4, 4) : Tensor();
      const Tensor weight = k.weight ? random_tensor({s.back()}, 13) : Tensor();
      const RmsNormResult r64 = rms_norm_forward(x, weight, gate, k.opt);
      EXPECT_EQ(r64.y.dtype(), DType::f64);
      EXPECT_EQ(r64.rstd.shape(), Shape(s.begin(), s.end() - 1));
      EXPECT_LE(rel_rms_error(r64.y, rms_reference(x, weight, gate, k.opt)), 1e-14);
      auto f32 = [](const Tensor& t) { return t.defined() ? t.to(DType::f32) : t; };
      const RmsNormResult r32 = rms_norm_forward(f32(x), f32(weight), f32(gate), k.opt);
      EXPECT_EQ(r32.y.dtype(), DType::f32);
      EXPECT_LE(rel_rms_error(r32.y, rms_reference(x, weight, gate, k.opt)), 1e-6);
    }
}

TEST(RmsNorm, GradientsMatchFiniteDifferences) {
  for (const RmsCase& k : rms_cases())
    for (const Shape& s : kShapes) {
      SCOPED_TRACE(k.name() + " " + shape_name(s));
      Tensor x = random_tensor(s, 21), gate = k.gate ? random_tensor(s, 22, -4, 4) : Tensor();
      Tensor weight = k.weight ? random_tensor({s.back()}, 23) : Tensor();
      const Tensor dy = random_tensor(s, 24);
      RmsNormOptions opt = k.opt;
      opt.eps = grad_check_eps(s, opt.eps);
      auto loss = [&]() { return dot(rms_norm_forward(x, weight, gate, opt).y, dy); };
      const RmsNormResult r = rms_norm_forward(x, weight, gate, opt);
      const RmsNormGrads g = rms_norm_backward(dy, x, r.rstd, weight, gate, opt);
      EXPECT_EQ(g.dweight.defined(), k.weight);
      EXPECT_EQ(g.dgate.defined(), k.gate);
      EXPECT_LE(rel_rms_error(g.dx, finite_diff(x, loss)), 1e-6) << "dx";
      if (k.weight) {
        EXPECT_EQ(g.dweight.shape(), weight.shape());
        EXPECT_LE(rel_rms_error(g.dweight, finite_diff(weight, loss)), 1e-6) << "dweight";
      }
      if (k.gate) {
        EXPECT_EQ(g.dgate.shape(), gate.shape());
        EXPECT_LE(rel_rms_error(g.dgate, finite_diff(gate, loss)), 1e-6) << "dgate";
      }
    }
}

// dres is added to dx: the gradient of x + rms_norm(x) (a residual around the norm).
TEST(RmsNorm, ResidualGradientIsAddedToDx) {
  const Shape s{3, 5, 24};
  const Tensor x = random_tensor(s, 41), w = random_tensor({24}, 42), dy = random_tensor(s, 43), dres = random_tensor(s, 44);
  const RmsNormResult r = rms_norm_forward(x, w, Tensor());
  const RmsNormGrads plain = rms_norm_backward(dy, x, r.rstd, w, Tensor());
  const RmsNormGrads with = rms_norm_backward(dy, x, r.rstd, w, Tensor(), {}, dres);
  Tensor want = plain.dx.clone();
  add_inplace(want, dres);
  EXPECT_LE(rel_rms_error(with.dx, want), 1e-15);
  EXPECT_EQ(with.dweight.to_f64_vector(), plain.dweight.to_f64_vector());
  EXPECT_THROW(rms_norm_backward(dy, x, r.rstd, w, Tensor(), {}, random_tensor({3, 5, 23}, 45)), ShapeError);
}

// Many rows take the parallel path; dweight is reduced in a fixed order, so any thread count gives the same bits.
TEST(RmsNorm, WeightGradientIsDeterministicAcrossThreadCounts) {
  const Shape s{3000, 4, 16};
  const Tensor x = random_tensor(s, 31).to(DType::f32), gate = random_tensor(s, 32).to(DType::f32);
  const Tensor weight = random_tensor({16}, 33).to(DType::f32), dy = random_tensor(s, 34).to(DType::f32);
  const RmsNormOptions opt;
  const RmsNormResult r = rms_norm_forward(x, weight, gate, opt);
  EXPECT_LE(rel_rms_error(r.y, rms_reference(x, weight, gate, opt)), 1e-6);
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  const RmsNormGrads g1 = rms_norm_backward(dy, x, r.rstd, weight, gate, opt);
  omp_set_num_threads(3);
  const RmsNormGrads g3 = rms_norm_backward(dy, x, r.rstd, weight, gate, opt);
  omp_set_num_threads(threads);
  EXPECT_EQ(rel_rms_error(g1.dweight, g3.dweight), 0.0);
  EXPECT_EQ(rel_rms_error(g1.dx, g3.dx), 0.0);
  EXPECT_EQ(rel_rms_error(g1.dgate, g3.dgate), 0.0);
  // and the fp32 sum over 12000 rows stays close to the fp64 one
  const Tensor x64 = x.to(DType::f64), g64 = gate.to(DType::f64);
  const RmsNormResult r64 = rms_norm_forward(x64, weight, g64, opt);
  const RmsNormGrads gd = rms_norm_backward(dy, x64, r64.rstd, weight, g64, opt);
  EXPECT_LE(rel_rms_error(g1.dweight, gd.dweight), 1e-5);
}

TEST(Norms, HalfInputsComputeInFloat) {
  const Tensor x = random_tensor({3, 8}, 41).to(DType::bf16), gate = random_tensor({3, 8}, 42).to(DType::f16);
  const RmsNormResult r = rms_norm_forward(x, random_tensor({8}, 43).to(DType::bf16), gate);
  EXPECT_EQ(r.y.dtype(), DType::f32);
  EXPECT_EQ(r.rstd.dtype(), DType::f32);
  const L2NormResult l = l2_norm_forward(x);
  EXPECT_EQ(l.y.dtype(), DType::f32);
  EXPECT_EQ(rel_rms_error(l.y, l2_norm_forward(x.to(DType::f32)).y), 0.0);
  EXPECT_EQ(l2_norm_backward(x, l.y, l.rstd).dtype(), DType::f32);
}

TEST(Norms, BadArgumentsThrowTypedErrors) {
  const Tensor x = random_tensor({3, 8}, 51), w = random_tensor({8}, 52);
  const RmsNormResult r = rms_norm_forward(x, w, {});
  RmsNormOptions bad_eps;
  bad_eps.eps = -1;
  EXPECT_THROW(rms_norm_forward(x, random_tensor({7}, 1), {}), ShapeError);                // weight D
  EXPECT_THROW(rms_norm_forward(x, random_tensor({1, 8}, 1), {}), ShapeError);             // weight 2-D
  EXPECT_THROW(rms_norm_forward(x, w, random_tensor({3, 7}, 1)), ShapeError);              // gate shape
  EXPECT_THROW(rms_norm_forward(x, w, {}, bad_eps), ValueError);                           // eps < 0
  EXPECT_THROW(rms_norm_forward(Tensor::zeros({3, 8}, DType::i32), w, {}), DTypeError);    // int x
  EXPECT_THROW(rms_norm_forward(x, w.to(DType::u8), {}), DTypeError);                      // int weight
  EXPECT_THROW(rms_norm_forward(Tensor::zeros({3, 0}, DType::f32), {}, {}), ShapeError);   // D = 0
  EXPECT_THROW(rms_norm_forward(Tensor(), w, {}), ValueError);                             // missing x
  EXPECT_THROW(rms_norm_backward(random_tensor({3, 7}, 1), x, r.rstd, w, {}), ShapeError); // dy shape
  EXPECT_THROW(rms_norm_backward(x, x, random_tensor({8}, 1), w, {}), ShapeError);         // rstd shape
  EXPECT_THROW(rms_norm_backward(x, x, Tensor(), w, {}), ValueError);                      // missing rstd
  EXPECT_THROW(l2_norm_forward(x, std::nan("")), ValueError);
  EXPECT_THROW(l2_norm_forward(Tensor::zeros({}, DType::f32)), ShapeError);                // 0-dim
  const L2NormResult l = l2_norm_forward(x);
  EXPECT_THROW(l2_norm_backward(x, l.y, random_tensor({3, 1}, 1)), ShapeError);
  EXPECT_THROW(l2_norm_backward(random_tensor({8, 3}, 1), l.y, l.rstd), ShapeError);
  EXPECT_THROW(l2_norm_backward(x.to(DType::i64), l.y, l.rstd), DTypeError);
}

}  // namespace
}  // namespace gdn2
