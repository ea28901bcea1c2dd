// AdamW over a model's parameters: global-norm clipping applied inside the update equals an update on gradients
// scaled beforehand, and no clipping happens below the limit.
#include <gtest/gtest.h>

#include <cmath>

#include "gdn2/ops/dense.h"
#include "gdn2/ops/optim.h"
#include "model/model_test_util.h"
#include "model/params.h"
#include "train/adamw.h"

namespace gdn2 {
namespace {

void random_grads(ParamStore& ps, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> nd(0.0, 1.0);
  ps.zero_grad();
  for (Param& p : ps.all())
    for (int64_t i = 0; i < p.grad.numel(); ++i) p.grad.data<double>()[i] = nd(rng);
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  double m = 0;
  for (int64_t i = 0; i < a.numel(); ++i) m = std::max(m, std::abs(a.data<double>()[i] - b.data<double>()[i]));
  return m;
}

TEST(AdamW, ClippingInsideTheUpdateEqualsScaledGradients) {
  const ModelConfig c = test::tiny_config("GA");
  ParamStore a(c, DType::f64, Device::cpu, DType::f64), b(c, DType::f64, Device::cpu, DType::f64);
  a.init(3, c.initializer_range, 2);
  b.init(3, c.initializer_range, 2);
  AdamW oa(a, {}), ob(b, {});
  for (int step = 0; step < 3; ++step) {
    random_grads(a, 10 + step);
    random_grads(b, 10 + step);
    std::vector<const Tensor*> grads;
    for (const Param& p : b.all()) grads.push_back(&p.grad);
    const double norm = std::sqrt(sum_squares(grads));
    const double limit = step == 1 ? 2 * norm : 0.5 * norm;  // the middle step stays under the limit
    EXPECT_NEAR(oa.clip_grad_norm(limit), norm, 1e-12 * norm);
    if (norm > limit)
      for (Param& p : b.all()) scale_inplace(p.grad, limit / (norm + 1e-12));
    oa.step(1e-2);
    ob.step(1e-2);
    for (size_t k = 0; k < a.all().size(); ++k)
      EXPECT_LE(max_abs_diff(a.all()[k].value, b.all()[k].value), 1e-14) << a.all()[k].spec.name << " step " << step;
  }
}

TEST(AdamW, GradScaleOfTheUpdateScalesTheGradient) {
  const Tensor w = Tensor::from_vector<double>({3}, {0.5, -1.0, 2.0});
  const Tensor g = Tensor::from_vector<double>({3}, {0.3, 0.7, -1.1});
  Tensor w1 = w.clone(), m1 = Tensor::zeros({3}, DType::f64), v1 = Tensor::zeros({3}, DType::f64);
  Tensor w2 = w.clone(), m2 = Tensor::zeros({3}, DType::f64), v2 = Tensor::zeros({3}, DType::f64);
  Tensor g2 = g.clone();
  scale_inplace(g2, 0.25);
  AdamWHyper h{1e-2, 0.9, 0.95, 1e-8, 0.1, 2};
  adamw_update(w2, g2, m2, v2, h);
  h.grad_scale = 0.25;
  adamw_update(w1, g, m1, v1, h);
  EXPECT_LE(max_abs_diff(w1, w2), 1e-15);
  EXPECT_LE(max_abs_diff(m1, m2), 1e-15);
  EXPECT_LE(max_abs_diff(v1, v2), 1e-15);
  h.grad_scale = std::nan("");
  EXPECT_THROW(adamw_update(w1, g, m1, v1, h), ValueError);
}

}  // namespace
}  // namespace gdn2
