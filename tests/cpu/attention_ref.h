// Naive fp64 references for the attention tests: the full score matrix with an explicit causal/window mask, and
// HF's rotate_half RoPE written out literally.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "gdn2/tensor.h"

namespace gdn2::test {

struct AttentionRef {
  Tensor o, lse;  // F64 [B, Tq, Hq, D], [B, Hq, Tq]
};

// mask[i][j]: query i (absolute position Tk − Tq + i) may attend to key j.
inline std::vector<std::vector<bool>> attention_mask(int64_t Tq, int64_t Tk, int64_t window) {
  std::vector<std::vector<bool>> m(static_cast<size_t>(Tq), std::vector<bool>(static_cast<size_t>(Tk), false));
  for (int64_t i = 0; i < Tq; ++i) {
    const int64_t p = Tk - Tq + i;
    for (int64_t j = 0; j < Tk; ++j) m[i][j] = j <= p && (window == 0 || j > p - window);
  }
  return m;
}

inline AttentionRef attention_reference(const Tensor& q_t, const Tensor& k_t, const Tensor& v_t, double scale,
                                        int64_t window) {
  const int64_t B = q_t.size(0), Tq = q_t.size(1), Hq = q_t.size(2), D = q_t.size(3), Tk = k_t.size(1),
                Hkv = k_t.size(2);
  if (scale == 0) scale = 1.0 / std::sqrt(static_cast<double>(D));
  const std::vector<double> q = q_t.to_f64_vector(), k = k_t.to_f64_vector(), v = v_t.to_f64_vector();
  const auto mask = attention_mask(Tq, Tk, window);
  std::vector<double> o(static_cast<size_t>(B * Tq * Hq * D)), lse(static_cast<size_t>(B * Hq * Tq));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < Hq; ++h) {
      const int64_t g = h / (Hq / Hkv);
      std::vector<double> s(static_cast<size_t>(Tq * Tk));  // the whole score matrix of this head
      for (int64_t i = 0; i < Tq; ++i)
        for (int64_t j = 0; j < Tk; ++j) {
          double dot = 0;
          for (int64_t d = 0; d < D; ++d)
            dot += q[((b * Tq + i) * Hq + h) * D + d] * k[((b * Tk + j) * Hkv + g) * D + d];
          s[i * Tk + j] = mask[i][j] ? scale * dot : -std::numeric_limits<double>::infinity();
        }
      for (int64_t i = 0; i < Tq; ++i) {
        double m = -std::numeric_limits<double>::infinity(), sum = 0;
        for (int64_t j = 0; j < Tk; ++j) m = std::max(m, s[i * Tk + j]);
        for (int64_t j = 0; j < Tk; ++j) sum += std::exp(s[i * Tk + j] - m);
        lse[(b * Hq + h) * Tq + i] = m + std::log(sum);
        for (int64_t j = 0; j < Tk; ++j) {
          const double p = std::exp(s[i * Tk + j] - m) / sum;
          for (int64_t d = 0; d < D; ++d) o[((b * Tq + i) * Hq + h) * D + d] += p * v[((b * Tk + j) * Hkv + g) * D + d];
        }
      }
    }
  return {Tensor::from_vector({B, Tq, Hq, D}, o), Tensor::from_vector({B, Hq, Tq}, lse)};
}

// HF apply_rotary_pos_emb on the first rotary_dim features: cos = cat(freqs, freqs).cos(), sin likewise,
// out = x·cos + rotate_half(x)·sin with rotate_half(x) = cat(−x2, x1); the rest passes through.
// positions: B·T entries, row-major [B, T].
inline Tensor rope_reference(const Tensor& x_t, const std::vector<int64_t>& positions, double theta,
                             int64_t rotary_dim) {
  const int64_t B = x_t.size(0), T = x_t.size(1), H = x_t.size(2), D = x_t.size(3), rd = rotary_dim, half = rd / 2;
  const std::vector<double> x = x_t.to_f64_vector();
  std::vector<double> y = x;
  for (int64_t n = 0; n < B * T; ++n) {
    std::vector<double> cos(static_cast<size_t>(rd)), sin(static_cast<size_t>(rd));
    for (int64_t i = 0; i < rd; ++i) {
      const double inv_freq = 1.0 / std::pow(theta, static_cast<double>(2 * (i % half)) / static_cast<double>(rd));
      cos[i] = std::cos(static_cast<double>(positions[n]) * inv_freq);
      sin[i] = std::sin(static_cast<double>(positions[n]) * inv_freq);
    }
    for (int64_t h = 0; h < H; ++h) {
      const double* xr = x.data() + (n * H + h) * D;
      double* yr = y.data() + (n * H + h) * D;
      for (int64_t i = 0; i < rd; ++i) {
        const double rotated = i < half ? -xr[i + half] : xr[i - half];
        yr[i] = xr[i] * cos[i] + rotated * sin[i];
      }
    }
  }
  return Tensor::from_vector(x_t.shape(), y);
}

}  // namespace gdn2::test
