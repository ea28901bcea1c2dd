// Row-wise L2 normalisation (fla l2norm: x * rsqrt(sum(x^2) + eps)) and its backward, for CPU kernels.
#pragma once

#include <cmath>
#include <cstdint>

namespace gdn2::cpu {

inline constexpr double kL2NormEps = 1e-6;

// Normalises x[0..n) in place; returns rstd = 1 / sqrt(sum(x^2) + eps).
template <class Real>
Real l2norm_row(Real* x, int64_t n, double eps = kL2NormEps) {
  Real ss = 0;
  for (int64_t i = 0; i < n; ++i) ss += x[i] * x[i];
  const Real rstd = Real(1) / std::sqrt(ss + static_cast<Real>(eps));
  for (int64_t i = 0; i < n; ++i) x[i] *= rstd;
  return rstd;
}

// Given y = normalised row and its rstd, turns dy (gradient wrt y) into dx in place: dx = rstd * (dy - y (y.dy)).
template <class Real>
void l2norm_row_bwd(const Real* y, Real rstd, Real* dy, int64_t n) {
  Real dot = 0;
  for (int64_t i = 0; i < n; ++i) dot += y[i] * dy[i];
  for (int64_t i = 0; i < n; ++i) dy[i] = rstd * (dy[i] - y[i] * dot);
}

}  // namespace gdn2::cpu
