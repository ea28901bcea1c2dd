// Vectorised exp for the softmax loops: Cephes' expf on 8-lane vectors (~1 ulp) for float, std::exp for double.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

namespace gdn2::cpu {

namespace exp_detail {

typedef float v8f __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));

// exp(x) lane-wise for x <= 88 (larger x give exp(88)); 0 below −87.3 (where expf would return a subnormal);
// NaN stays NaN. exp(x) = 2^n · exp(r) with n = round(x / ln 2) and r = x − n·ln 2 in two parts, exp(r) by
// Cephes' minimax polynomial (relative error below 1e-7 over the whole range). Written with vector extensions
// because the compiler will not if-convert the float compares of a scalar version under -ftrapping-math.
inline void exp8(v8f& v) {  // in place: a vector by value would change the ABI without AVX
  const v8f x = v;
  const v8f lo = v8f{} - 87.3f, hi = v8f{} + 88.0f;
  v8f xc = x > lo ? x : lo;  // NaN lanes become −87.3 here, so no NaN reaches the integer conversion
  xc = xc < hi ? xc : hi;
  const v8f n = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;  // round to nearest via 1.5·2^23
  v8f r = xc - n * 0.693359375f;
  r = r + n * 2.12194440e-4f;
  v8f p = r * 1.9875691500e-4f + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const v8i bits = (__builtin_convertvector(n, v8i) + 127) << 23;
  v8f two_n;
  std::memcpy(&two_n, &bits, sizeof two_n);
  const v8f y = p * two_n;
  const v8f zero = v8f{};
  const v8f z = x < lo ? zero : y;
  v = x == x ? z : x;
}

// x[i] = exp(x[i] − shift[i] (or shift when shift_step is 0)) for i < n, every element through exp8.
inline void exp_span(float* x, const float* shift, int64_t shift_step, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    v8f v, s;
    std::memcpy(&v, x + i, sizeof v);
    if (shift_step) {
      std::memcpy(&s, shift + i, sizeof s);
    } else {
      s = v8f{} + shift[0];
    }
    v -= s;
    exp8(v);
    std::memcpy(x + i, &v, sizeof v);
  }
  if (i == n) return;
  alignas(32) float v[8] = {}, s[8] = {};
  for (int64_t j = i; j < n; ++j) {
    v[j - i] = x[j];
    s[j - i] = shift_step ? shift[j] : shift[0];
  }
  v8f r;
  std::memcpy(&r, v, sizeof r);
  v8f sv;
  std::memcpy(&sv, s, sizeof sv);
  r -= sv;
  exp8(r);
  std::memcpy(v, &r, sizeof r);
  for (int64_t j = i; j < n; ++j) x[j] = v[j - i];
}

}  // namespace exp_detail

// x[i] = exp(x[i] − shift) for i < n.
inline void exp_shifted(float* x, int64_t n, float shift) { exp_detail::exp_span(x, &shift, 0, n); }
inline void exp_shifted(double* x, int64_t n, double shift) {
  for (int64_t i = 0; i < n; ++i) x[i] = std::exp(x[i] - shift);
}

// x[i] = exp(x[i] − shift[i]) for i < n.
inline void exp_shifted_each(float* x, const float* shift, int64_t n) { exp_detail::exp_span(x, shift, 1, n); }
inline void exp_shifted_each(double* x, const double* shift, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] = std::exp(x[i] - shift[i]);
}

}  // namespace gdn2::cpu
