// Model gradients: every parameter of a tiny hybrid (all layer kinds) against fp64 central finite differences.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "gdn2/model/lm.h"
#include "gdn2/ops/dense.h"
#include "model/params.h"
#include "model_test_util.h"

namespace gdn2 {
namespace {

TEST(ModelGrad, EveryParameterMatchesFiniteDifferences) {
  const ModelConfig c = test::tiny_config("GKDSAW");
  LanguageModel m(c, DType::f64);
  m.init_random(7);
  const Tensor ids = test::random_ids(2, 11, c.vocab_size, 1);
  Tensor targets = test::random_ids(2, 11, c.vocab_size, 2);
  targets.data<int32_t>()[3] = -1;  // an ignored position
  m.params().zero_grad();
  m.forward_loss(ids, targets, true);
  m.backward();
  std::mt19937_64 rng(3);
  int checked = 0;
  for (Param& p : m.params().all()) {
    const Tensor grad = p.grad.clone();
    const std::vector<double> g = grad.to_f64_vector();
    double gnorm = 0;
    for (double v : g) gnorm += v * v;
    gnorm = std::sqrt(gnorm / static_cast<double>(g.size()));
    for (int s = 0; s < 3; ++s) {
      const int64_t i = static_cast<int64_t>(rng() % static_cast<uint64_t>(p.value.numel()));
      double* w = p.value.data<double>();
      const double keep = w[i], eps = 1e-6;
      w[i] = keep + eps;
      const double lp = m.forward_loss(ids, targets, false);
      w[i] = keep - eps;
      const double lm = m.forward_loss(ids, targets, false);
      w[i] = keep;
      const double fd = (lp - lm) / (2 * eps);
      EXPECT_NEAR(fd, g[static_cast<size_t>(i)], 2e-6 * gnorm + 1e-8 + 1e-5 * std::abs(fd))
          << p.spec.name << "[" << i << "]";
      ++checked;
    }
  }
  EXPECT_GT(checked, 100);
}

// zero_grad() marks the gradients stale instead of zeroing them: a second step after it gives the first step's
// gradients bitwise (each first writer writes, nothing adds onto the old values), and two backward passes without it
// add up (accumulation over micro-batches).
TEST(ModelGrad, ZeroGradThenStepsWriteOrAccumulate) {
  const ModelConfig c = test::tiny_config("GKA", true);
  LanguageModel m(c, DType::f32);
  m.init_random(11);
  const Tensor ids = test::random_ids(2, 9, c.vocab_size, 6), targets = test::random_ids(2, 9, c.vocab_size, 7);
  auto step = [&] {
    m.forward_loss(ids, targets, true);
    m.backward();
    std::vector<Tensor> g;
    for (const Param& p : m.params().all()) {
      EXPECT_FALSE(p.grad_stale) << p.spec.name << ": backward leaves no gradient stale";
      g.push_back(p.grad.clone());
    }
    return g;
  };
  m.params().zero_grad();
  const std::vector<Tensor> first = step();
  m.params().zero_grad();
  const std::vector<Tensor> again = step();
  const std::vector<Tensor> twice = step();  // no zero_grad: accumulates
  const auto& ps = m.params().all();
  for (size_t i = 0; i < ps.size(); ++i) {
    EXPECT_EQ(rel_rms_error(again[i], first[i]), 0.0) << ps[i].spec.name;
    Tensor want = first[i].clone();
    add_inplace(want, first[i]);
    EXPECT_LE(rel_rms_error(twice[i], want), 1e-6) << ps[i].spec.name;
  }
}

TEST(ModelGrad, TiedHeadAccumulatesBothUses) {
  const ModelConfig c = test::tiny_config("GA", true);
  LanguageModel m(c, DType::f64);
  m.init_random(9);
  const Tensor ids = test::random_ids(1, 9, c.vocab_size, 4), targets = test::random_ids(1, 9, c.vocab_size, 5);
  m.params().zero_grad();
  m.forward_loss(ids, targets, true);
  m.backward();
  Param& e = m.params().at("model.embed_tokens.weight");
  const double g = e.grad.data<double>()[5 * c.hidden_size + 3];
  double* w = e.value.data<double>();
  const double keep = w[5 * c.hidden_size + 3];
  w[5 * c.hidden_size + 3] = keep + 1e-6;
  const double lp = m.forward_loss(ids, targets, false);
  w[5 * c.hidden_size + 3] = keep - 1e-6;
  const double lm = m.forward_loss(ids, targets, false);
  EXPECT_NEAR((lp - lm) / 2e-6, g, 1e-7);
}

}  // namespace
}  // namespace gdn2
