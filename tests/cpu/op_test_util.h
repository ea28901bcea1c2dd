// Helpers for the CPU op tests: seeded random tensors, fp64 dot products and central finite differences.
#pragma once

#include <cstdint>
#include <functional>
#include <random>
#include <vector>

#include "gdn2/tensor.h"

namespace gdn2::test {

// Uniform values in [lo, hi), in F64 (convert with .to() for other dtypes).
inline Tensor random_tensor(const Shape& shape, uint64_t seed, double lo = -1.0, double hi = 1.0) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(lo, hi);
  std::vector<double> v(static_cast<size_t>(shape_numel(shape)));
  for (double& e : v) e = u(rng);
  return Tensor::from_vector(shape, v);
}

inline double dot(const Tensor& a, const Tensor& b) {
  const std::vector<double> x = a.to_f64_vector(), y = b.to_f64_vector();
  double s = 0;
  for (size_t i = 0; i < x.size(); ++i) s += x[i] * y[i];
  return s;
}

// Central differences of loss() with respect to every element of the F64 tensor x, which loss() reads (tensor
// copies share memory, so a closure holding a copy of x sees the perturbation). x is restored afterwards.
inline Tensor finite_diff(Tensor& x, const std::function<double()>& loss, double h = 1e-5) {
  double* p = x.data<double>();
  std::vector<double> g(static_cast<size_t>(x.numel()));
  for (int64_t i = 0; i < x.numel(); ++i) {
    const double keep = p[i];
    p[i] = keep + h;
    const double up = loss();
    p[i] = keep - h;
    const double down = loss();
    p[i] = keep;
    g[static_cast<size_t>(i)] = (up - down) / (2 * h);
  }
  return Tensor::from_vector(x.shape(), g);
}

// Rows [begin, end) of dimension `dim` (0 or 1) of a tensor, as a fresh F64 tensor.
inline Tensor slice_dim(const Tensor& x, int64_t dim, int64_t begin, int64_t end) {
  const std::vector<double> v = x.to_f64_vector();
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < dim; ++d) outer *= x.size(d);
  for (int64_t d = dim + 1; d < x.dim(); ++d) inner *= x.size(d);
  const int64_t n = x.size(dim);
  std::vector<double> out;
  for (int64_t o = 0; o < outer; ++o)
    out.insert(out.end(), v.begin() + (o * n + begin) * inner, v.begin() + (o * n + end) * inner);
  Shape s = x.shape();
  s[static_cast<size_t>(dim)] = end - begin;
  return Tensor::from_vector(s, out);
}

}  // namespace gdn2::test
