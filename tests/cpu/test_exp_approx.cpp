// The softmax exp (src/cpu/exp_approx.h): float accuracy over the whole range, underflow to 0, NaN and infinities,
// every span length (vector body and tail), per-element shifts, and the double path.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "cpu/exp_approx.h"

namespace gdn2 {
namespace {

TEST(ExpApprox, FloatWithinTwoUlpOverTheRange) {
  std::vector<float> x;
  for (int i = 0; i <= 2000000; ++i) x.push_back(-87.0f + 175.0f * static_cast<float>(i) / 2000000.0f);
  std::vector<float> y = x;
  cpu::exp_shifted(y.data(), static_cast<int64_t>(y.size()), 0.0f);
  double worst = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double want = std::exp(static_cast<double>(x[i]));
    worst = std::max(worst, std::abs(y[i] - want) / want);
  }
  EXPECT_LE(worst, 2.4e-7);  // 2 ulp; measured 8.5e-8
}

TEST(ExpApprox, EdgeValues) {
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> x = {0.0f, -0.0f, -87.4f, -100.0f, -1e4f, -inf, nan, 1.0f, -1.0f};
  cpu::exp_shifted(x.data(), static_cast<int64_t>(x.size()), 0.0f);
  EXPECT_EQ(x[0], 1.0f);
  EXPECT_EQ(x[1], 1.0f);
  EXPECT_EQ(x[2], 0.0f);  // below the normal range: flushed to 0
  EXPECT_EQ(x[3], 0.0f);
  EXPECT_EQ(x[4], 0.0f);
  EXPECT_EQ(x[5], 0.0f);
  EXPECT_TRUE(std::isnan(x[6]));
  EXPECT_NEAR(x[7], std::exp(1.0), 3e-7);
  EXPECT_NEAR(x[8], std::exp(-1.0), 1e-7);
}

TEST(ExpApprox, EverySpanLengthAndPerElementShifts) {
  for (int64_t n = 0; n <= 27; ++n) {
    std::vector<float> x(static_cast<size_t>(n)), sh(static_cast<size_t>(n)), each;
    for (int64_t i = 0; i < n; ++i) {
      x[i] = 0.37f * static_cast<float>(i) - 3.0f;
      sh[i] = 0.11f * static_cast<float>(i);
    }
    each = x;
    std::vector<float> one = x;
    cpu::exp_shifted(one.data(), n, 1.5f);
    cpu::exp_shifted_each(each.data(), sh.data(), n);
    for (int64_t i = 0; i < n; ++i) {
      EXPECT_NEAR(one[i], std::exp(static_cast<double>(x[i] - 1.5f)), 2.4e-7 * std::exp(double(x[i] - 1.5f)));
      EXPECT_NEAR(each[i], std::exp(static_cast<double>(x[i] - sh[i])), 2.4e-7 * std::exp(double(x[i] - sh[i])));
    }
  }
  std::vector<double> d = {-2.0, 0.5, 3.0};
  const std::vector<double> shift = {1.0, 1.0, -1.0};
  cpu::exp_shifted_each(d.data(), shift.data(), 3);
  EXPECT_EQ(d[0], std::exp(-3.0));
  EXPECT_EQ(d[1], std::exp(-0.5));
  EXPECT_EQ(d[2], std::exp(4.0));
}

}  // namespace
}  // namespace gdn2
