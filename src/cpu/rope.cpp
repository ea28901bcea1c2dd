// CPU rotary position embedding: cos/sin per token in double, rotation of every head in the compute dtype.
#include "cpu/rope.h"

#include <cmath>

#include "cpu/parallel.h"

namespace gdn2::cpu {

namespace {

template <class Real>
Tensor rotate_impl(const Tensor& x_t, const std::vector<int64_t>& positions, double theta, int64_t rd, bool inverse) {
  const int64_t B = x_t.size(0), T = x_t.size(1), H = x_t.size(2), D = x_t.size(3), half = rd / 2;
  const int64_t tokens = B * T;
  std::vector<double> inv_freq(static_cast<size_t>(half));
  for (int64_t i = 0; i < half; ++i)
    inv_freq[static_cast<size_t>(i)] = std::pow(theta, -static_cast<double>(2 * i) / static_cast<double>(rd));
  Tensor y_t = x_t.clone();
  Real* y = y_t.data<Real>();
  const double sign = inverse ? -1.0 : 1.0;
#pragma omp parallel if (worth_parallel(tokens * (H * rd + 16 * half)))
  {
    std::vector<Real> cs(static_cast<size_t>(half)), sn(static_cast<size_t>(half));
#pragma omp for schedule(static)
    for (int64_t n = 0; n < tokens; ++n) {
      const double p = static_cast<double>(positions[static_cast<size_t>(n)]);
      for (int64_t i = 0; i < half; ++i) {
        const double a = p * inv_freq[static_cast<size_t>(i)];
        cs[static_cast<size_t>(i)] = static_cast<Real>(std::cos(a));
        sn[static_cast<size_t>(i)] = static_cast<Real>(sign * std::sin(a));
      }
      for (int64_t h = 0; h < H; ++h) {
        Real* r = y + (n * H + h) * D;
        for (int64_t i = 0; i < half; ++i) {
          const Real x1 = r[i], x2 = r[i + half], c = cs[static_cast<size_t>(i)], s = sn[static_cast<size_t>(i)];
          r[i] = x1 * c - x2 * s;
          r[i + half] = x2 * c + x1 * s;
        }
      }
    }
  }
  return y_t;
}

}  // namespace

Tensor rope_rotate(const Tensor& x, const std::vector<int64_t>& positions, double theta, int64_t rotary_dim,
                   bool inverse) {
  return x.dtype() == DType::f64 ? rotate_impl<double>(x, positions, theta, rotary_dim, inverse)
                                 : rotate_impl<float>(x, positions, theta, rotary_dim, inverse);
}

}  // namespace gdn2::cpu
