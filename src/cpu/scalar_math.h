// Scalar activations and their derivatives for CPU kernels, written to stay finite (no NaN) for any finite input.
#pragma once

#include <algorithm>
#include <cmath>

namespace gdn2::cpu {

template <class T>
inline T sigmoid(T x) {
  if (x >= 0) return T(1) / (T(1) + std::exp(-x));
  const T e = std::exp(x);
  return e / (T(1) + e);
}

template <class T>
inline T silu(T x) {
  return x * sigmoid(x);
}

// d silu / dx = s · (1 + x · (1 − s)), s = sigmoid(x).
template <class T>
inline T silu_grad(T x) {
  const T s = sigmoid(x);
  return s * (T(1) + x * (T(1) - s));
}

// fla's softplus: x above the threshold 20, else log1p(exp(x)).
inline constexpr double kSoftplusThreshold = 20.0;

template <class T>
inline T softplus(T x) {
  return x > T(kSoftplusThreshold) ? x : std::log1p(std::exp(x));
}

// log(softplus(x)) without underflow to −inf: for x < −20, log(log1p(e^x)) = x − e^x/2 + O(e^{2x}).
template <class T>
inline T log_softplus(T x) {
  if (x > T(kSoftplusThreshold)) return std::log(x);
  if (x < -T(kSoftplusThreshold)) return x - T(0.5) * std::exp(x);
  return std::log(std::log1p(std::exp(x)));
}

// log(sigmoid(x)) = min(x, 0) − log1p(exp(−|x|)), finite for every finite x.
template <class T>
inline T log_sigmoid(T x) {
  return std::min(x, T(0)) - std::log1p(std::exp(-std::abs(x)));
}

// a · b, but 0 whenever either factor is 0 (so 0 · inf gives 0, not NaN).
template <class T>
inline T mul_zero_safe(T a, T b) {
  return (a == T(0) || b == T(0)) ? T(0) : a * b;
}

}  // namespace gdn2::cpu
