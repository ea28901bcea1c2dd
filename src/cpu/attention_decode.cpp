// CPU decode attention against per-sequence KV caches: one query per sequence, a numerically stable softmax over the
// keys its length and window select, in the compute dtype.
#include <algorithm>
#include <cmath>
#include <vector>

#include "cpu/attention.h"
#include "cpu/parallel.h"

namespace gdn2::cpu {

namespace {

template <class T>
void decode_rows(const Tensor& q, const Tensor& kc, const Tensor& vc, const std::vector<int64_t>& lengths, double scale,
                 int64_t window, Tensor& o) {
  const int64_t N = q.size(0), Hq = q.size(1), D = q.size(2), L = kc.size(1), Hkv = kc.size(2), G = Hq / Hkv;
  const T* qp = q.data<T>();
  const T* kp = kc.data<T>();
  const T* vp = vc.data<T>();
  T* op = o.data<T>();
#pragma omp parallel for schedule(static) if (worth_parallel(N * Hq * L * D))
  for (int64_t r = 0; r < N * Hq; ++r) {
    const int64_t n = r / Hq, h = r % Hq, hk = h / G, len = lengths[static_cast<size_t>(n)];
    const int64_t start = window > 0 ? std::max<int64_t>(0, len - window) : 0;
    const T* qr = qp + (n * Hq + h) * D;
    std::vector<T> s(static_cast<size_t>(len - start));
    T mx = -INFINITY;
    for (int64_t j = start; j < len; ++j) {
      const T* kr = kp + ((n * L + j) * Hkv + hk) * D;
      T dot = 0;
      for (int64_t d = 0; d < D; ++d) dot += qr[d] * kr[d];
      s[static_cast<size_t>(j - start)] = dot * static_cast<T>(scale);
      mx = std::max(mx, s[static_cast<size_t>(j - start)]);
    }
    T sum = 0;
    for (T& x : s) sum += x = std::exp(x - mx);
    T* orow = op + (n * Hq + h) * D;
    std::fill(orow, orow + D, T(0));
    for (int64_t j = start; j < len; ++j) {
      const T p = s[static_cast<size_t>(j - start)] / sum;
      const T* vr = vp + ((n * L + j) * Hkv + hk) * D;
      for (int64_t d = 0; d < D; ++d) orow[d] += p * vr[d];
    }
  }
}

}  // namespace

Tensor attention_decode(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache,
                        const std::vector<int64_t>& lengths, double scale, int64_t window) {
  Tensor o = Tensor::empty(q.shape(), q.dtype());
  if (q.dtype() == DType::f64)
    decode_rows<double>(q, k_cache, v_cache, lengths, scale, window, o);
  else
    decode_rows<float>(q, k_cache, v_cache, lengths, scale, window, o);
  return o;
}

}  // namespace gdn2::cpu
