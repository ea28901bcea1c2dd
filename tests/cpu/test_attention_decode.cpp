// Decode attention on KV caches of fixed capacity against the causal attention op: each sequence's one query over its
// own length (and window) equals attention_forward's last row on that sequence's keys, and times its output gate where
// one is given; kv_cache_write places rows;
// attention_decode_inputs (from the fused projection's rows) against the norm, rotation, cache writes and the gate's
// sigmoid worked out here in double; bad calls refused.
#include <gtest/gtest.h>

#include <cmath>
#include <optional>
#include <vector>

#include "cpu/op_test_util.h"
#include "cpu/packed_qkv.h"
#include "gdn2/ops/attention.h"

namespace gdn2 {
namespace {

using test::random_tensor;

// Rows [0, len) of sequence n of a cache [S, L, H, D], as [1, len, H, D].
Tensor prefix(const Tensor& cache, int64_t n, int64_t len) {
  const int64_t L = cache.size(1), H = cache.size(2), D = cache.size(3);
  const std::vector<double> v = cache.to_f64_vector();
  const auto at = v.begin() + n * L * H * D;
  return Tensor::from_vector<double>({1, len, H, D}, std::vector<double>(at, at + len * H * D));
}

TEST(AttentionDecode, MatchesCausalAttentionPerSequence) {
  const int64_t S = 5, L = 19, Hq = 6, Hkv = 2, D = 7;
  const std::vector<int32_t> lengths{1, 19, 7, 12};  // N = 4 of 5 slots
  const int64_t N = static_cast<int64_t>(lengths.size());
  for (int64_t window : {0, 5}) {
    const Tensor kc = random_tensor({S, L, Hkv, D}, 1), vc = random_tensor({S, L, Hkv, D}, 2);
    const Tensor q = random_tensor({N, Hq, D}, 3);
    AttentionOptions opt;
    opt.window = window;
    const Tensor o = attention_decode(q, kc, vc, Tensor::from_vector<int32_t>({N}, lengths), opt);
    ASSERT_EQ(o.shape(), (Shape{N, Hq, D}));
    for (int64_t n = 0; n < N; ++n) {
      const int64_t len = lengths[static_cast<size_t>(n)];
      const Tensor qn = q.slice0(n, n + 1).reshape({1, 1, Hq, D});
      const Tensor want = attention_forward(qn, prefix(kc, n, len), prefix(vc, n, len), opt).o;
      EXPECT_LE(rel_rms_error(o.slice0(n, n + 1).reshape({1, 1, Hq, D}), want), 1e-12)
          << "sequence " << n << " window " << window;
    }
  }
}

TEST(AttentionDecode, Float32AndBadCalls) {
  const Tensor kc = random_tensor({2, 4, 1, 8}, 4).to(DType::f32), vc = random_tensor({2, 4, 1, 8}, 5).to(DType::f32);
  const Tensor q = random_tensor({2, 2, 8}, 6).to(DType::f32);
  const Tensor o = attention_decode(q, kc, vc, Tensor::from_vector<int32_t>({2}, {4, 2}));
  const Tensor o64 = attention_decode(q.to(DType::f64), kc.to(DType::f64), vc.to(DType::f64),
                                      Tensor::from_vector<int32_t>({2}, {4, 2}));
  EXPECT_EQ(o.dtype(), DType::f32);
  EXPECT_LE(rel_rms_error(o, o64), 1e-6);
  EXPECT_THROW(attention_decode(q, kc, vc, Tensor::from_vector<int32_t>({2}, {5, 1})), ValueError);  // > L
  EXPECT_THROW(attention_decode(q, kc, vc, Tensor::from_vector<int32_t>({2}, {0, 1})), ValueError);  // empty
  EXPECT_THROW(attention_decode(q, kc, vc, Tensor::from_vector<int32_t>({3}, {1, 1, 1})), ShapeError);
  EXPECT_THROW(attention_decode(q, kc, vc, Tensor::from_vector<int64_t>({2}, {1, 1})), DTypeError);
  EXPECT_THROW(attention_decode(random_tensor({3, 2, 8}, 7).to(DType::f32), kc, vc,
                                Tensor::from_vector<int32_t>({3}, {1, 1, 1})),
               ShapeError);  // N > S
  const Tensor kc2 = random_tensor({2, 4, 2, 8}, 8).to(DType::f32);
  EXPECT_THROW(attention_decode(random_tensor({2, 3, 8}, 7).to(DType::f32), kc2, kc2,
                                Tensor::from_vector<int32_t>({2}, {1, 1})),
               ShapeError);  // Hq % Hkv
}

TEST(AttentionDecode, GateMultipliesTheOutput) {
  const Tensor kc = random_tensor({3, 6, 2, 5}, 11), vc = random_tensor({3, 6, 2, 5}, 12);
  const Tensor q = random_tensor({3, 4, 5}, 13), gate = random_tensor({3, 4, 5}, 14);
  const Tensor len = Tensor::from_vector<int32_t>({3}, {6, 1, 4});
  const std::vector<double> o = attention_decode(q, kc, vc, len).to_f64_vector();
  const std::vector<double> g = gate.to_f64_vector();
  const std::vector<double> got = attention_decode(q, kc, vc, len, {}, gate).to_f64_vector();
  ASSERT_EQ(got.size(), o.size());
  for (size_t i = 0; i < o.size(); ++i) EXPECT_NEAR(got[i], o[i] * g[i], 1e-15) << i;
  // F32: the gate in q's dtype; the product in F32.
  const Tensor q32 = q.to(DType::f32), g32 = gate.to(DType::f32);
  EXPECT_LE(rel_rms_error(attention_decode(q32, kc.to(DType::f32), vc.to(DType::f32), len, {}, g32),
                          Tensor::from_vector<double>({3, 4, 5}, got)),
            1e-6);
  EXPECT_THROW(attention_decode(q, kc, vc, len, {}, random_tensor({3, 4, 4}, 15)), ShapeError);
  EXPECT_THROW(attention_decode(q, kc, vc, len, {}, g32), DTypeError);  // not q's dtype
}

TEST(KvCacheWrite, PlacesRowsAtPositions) {
  Tensor cache = Tensor::zeros({3, 5, 2, 3}, DType::f32);
  const Tensor x = random_tensor({2, 2, 3}, 8).to(DType::f32);
  kv_cache_write(cache, x, Tensor::from_vector<int32_t>({2}, {4, 0}));
  const std::vector<double> c = cache.to_f64_vector(), xv = x.to_f64_vector();
  for (int64_t e = 0; e < 6; ++e) {
    EXPECT_EQ(c[static_cast<size_t>((0 * 5 + 4) * 6 + e)], xv[static_cast<size_t>(e)]);
    EXPECT_EQ(c[static_cast<size_t>((1 * 5 + 0) * 6 + e)], xv[static_cast<size_t>(6 + e)]);
  }
  double rest = 0;
  for (double v : c) rest += std::abs(v);
  double placed = 0;
  for (double v : xv) placed += std::abs(v);
  EXPECT_NEAR(rest, placed, 1e-9);  // nothing else written
  EXPECT_THROW(kv_cache_write(cache, x, Tensor::from_vector<int32_t>({2}, {5, 0})), ValueError);
  EXPECT_THROW(kv_cache_write(cache, x.to(DType::f64), Tensor::from_vector<int32_t>({2}, {1, 0})), DTypeError);
  EXPECT_THROW(kv_cache_write(cache, random_tensor({4, 2, 3}, 9).to(DType::f32),
                              Tensor::from_vector<int32_t>({4}, {0, 0, 0, 0})),
               ShapeError);
}

// Row r of [rows, D] values: RMS-normed with weight w (as 1 + w when zero-centred), rotated at position p by the first
// rd features (rd 0: none), in double.
std::vector<double> norm_rope_row(const std::vector<double>& x, int64_t r, int64_t D, const std::vector<double>& w,
                                  bool zero_centred, double eps, double theta, int64_t rd, int64_t p) {
  double ss = 0;
  for (int64_t d = 0; d < D; ++d) ss += x[static_cast<size_t>(r * D + d)] * x[static_cast<size_t>(r * D + d)];
  const double inv = 1.0 / std::sqrt(ss / static_cast<double>(D) + eps);
  std::vector<double> y(static_cast<size_t>(D));
  for (int64_t d = 0; d < D; ++d)
    y[static_cast<size_t>(d)] =
        x[static_cast<size_t>(r * D + d)] * inv * (zero_centred ? 1.0 + w[static_cast<size_t>(d)] : w[static_cast<size_t>(d)]);
  std::vector<double> out = y;
  for (int64_t i = 0; i < rd / 2; ++i) {
    const double a = static_cast<double>(p) * std::pow(theta, -2.0 * static_cast<double>(i) / static_cast<double>(rd));
    const double x1 = y[static_cast<size_t>(i)], x2 = y[static_cast<size_t>(i + rd / 2)];
    out[static_cast<size_t>(i)] = x1 * std::cos(a) - x2 * std::sin(a);
    out[static_cast<size_t>(i + rd / 2)] = x2 * std::cos(a) + x1 * std::sin(a);
  }
  return out;
}

TEST(AttentionDecodeInputs, NormsRotatesAndWritesTheCaches) {
  const int64_t N = 3, Hq = 4, Hkv = 2, D = 12, S = 4, L = 6;
  const Tensor q = random_tensor({N, Hq, D}, 31).to(DType::f32), k = random_tensor({N, Hkv, D}, 32).to(DType::f32);
  const Tensor v = random_tensor({N, Hkv, D}, 33).to(DType::f32);
  const Tensor gate = random_tensor({N, Hq, D}, 37, -4.0, 4.0).to(DType::f32);
  const Tensor qkv = test::packed_qkv(q, gate, k, v);
  const Tensor qw = random_tensor({D}, 34, -0.5, 0.5).to(DType::f32), kw = random_tensor({D}, 35, -0.5, 0.5).to(DType::f32);
  const std::vector<int32_t> pos{5, 0, 2};
  RmsNormOptions norm;
  norm.eps = 1e-6;
  for (const auto& [zero_centred, rd] : std::vector<std::pair<bool, int64_t>>{{true, 4}, {false, 0}, {true, -1}}) {
    norm.zero_centred = zero_centred;
    const std::optional<RopeOptions> rope =
        rd < 0 ? std::nullopt : std::optional<RopeOptions>(RopeOptions{1e4, rd});  // rd 0: all of D
    const int64_t rot = rd < 0 ? 0 : rd == 0 ? D : rd;
    Tensor kc = Tensor::zeros({S, L, Hkv, D}, DType::f32), vc = Tensor::zeros({S, L, Hkv, D}, DType::f32);
    const AttentionDecodeInputs got =
        attention_decode_inputs(qkv, Hq, Hkv, qw, kw, norm, rope, kc, vc, Tensor::from_vector<int32_t>({N}, pos));
    ASSERT_EQ(got.q.shape(), (Shape{N, Hq, D}));
    ASSERT_EQ(got.gate.shape(), (Shape{N, Hq, D}));
    EXPECT_EQ(got.q.dtype(), DType::f32);
    EXPECT_EQ(got.gate.dtype(), DType::f32);
    const std::vector<double> qv = q.to_f64_vector(), kv = k.to_f64_vector(), vv = v.to_f64_vector();
    const std::vector<double> qo = got.q.to_f64_vector(), kcv = kc.to_f64_vector(), vcv = vc.to_f64_vector();
    const std::vector<double> gv = gate.to_f64_vector(), go = got.gate.to_f64_vector();
    const std::vector<double> qwv = qw.to_f64_vector(), kwv = kw.to_f64_vector();
    double err = 0, scale = 0, written = 0, gate_err = 0;
    for (int64_t n = 0; n < N; ++n) {
      const int64_t p = pos[static_cast<size_t>(n)];
      for (int64_t h = 0; h < Hq; ++h) {
        const std::vector<double> want = norm_rope_row(qv, n * Hq + h, D, qwv, zero_centred, 1e-6, 1e4, rot, p);
        for (int64_t d = 0; d < D; ++d) {
          const size_t i = static_cast<size_t>((n * Hq + h) * D + d);
          err = std::max(err, std::abs(qo[i] - want[static_cast<size_t>(d)]));
          scale = std::max(scale, std::abs(want[static_cast<size_t>(d)]));
          gate_err = std::max(gate_err, std::abs(go[i] - 1.0 / (1.0 + std::exp(-gv[i]))));
        }
      }
      for (int64_t h = 0; h < Hkv; ++h) {
        const std::vector<double> want = norm_rope_row(kv, n * Hkv + h, D, kwv, zero_centred, 1e-6, 1e4, rot, p);
        const int64_t at = ((n * L + p) * Hkv + h) * D;
        for (int64_t d = 0; d < D; ++d) {
          err = std::max(err, std::abs(kcv[static_cast<size_t>(at + d)] - want[static_cast<size_t>(d)]));
          EXPECT_EQ(vcv[static_cast<size_t>(at + d)], vv[static_cast<size_t>((n * Hkv + h) * D + d)]);
        }
      }
    }
    for (double x : vcv) written += x != 0;
    EXPECT_EQ(written, static_cast<double>(N * Hkv * D)) << "v rows written elsewhere";
    EXPECT_LE(err, 1e-5 * scale) << "zero_centred " << zero_centred << " rotary_dim " << rd;
    EXPECT_LE(gate_err, 1e-6) << "the gate's sigmoid";
  }
  Tensor kc = Tensor::zeros({S, L, Hkv, D}, DType::f32), vc = kc.clone();
  const Tensor p = Tensor::from_vector<int32_t>({N}, pos);
  const std::optional<RopeOptions> rope = RopeOptions{1e4, 4};
  EXPECT_THROW(attention_decode_inputs(qkv, Hq, 3, qw, kw, norm, rope, kc, vc, p), ValueError);  // Hq % Hkv
  EXPECT_THROW(attention_decode_inputs(qkv, 2 * Hq, Hkv, qw, kw, norm, rope, kc, vc, p), ShapeError);  // the width
  EXPECT_THROW(attention_decode_inputs(qkv.reshape({N, 1, (2 * Hq + 2 * Hkv) * D}), Hq, Hkv, qw, kw, norm, rope, kc,
                                       vc, p),
               ShapeError);
  EXPECT_THROW(attention_decode_inputs(qkv.to(DType::f64), Hq, Hkv, qw, kw, norm, rope, kc, vc, p), DTypeError);
  EXPECT_THROW(attention_decode_inputs(qkv, Hq, Hkv, random_tensor({D + 1}, 36).to(DType::f32), kw, norm, rope, kc, vc,
                                       p),
               ShapeError);
  EXPECT_THROW(attention_decode_inputs(qkv, Hq, Hkv, qw, kw, norm, RopeOptions{1e4, 3}, kc, vc, p), ValueError);
  EXPECT_THROW(attention_decode_inputs(qkv, Hq, Hkv, qw, kw, norm, rope, kc, vc,
                                       Tensor::from_vector<int32_t>({N}, {6, 0, 1})),
               ValueError);  // a position past L
}

// BF16 rows (the GPU tests' reference): each result in BF16. Against the same values in F32: the gate and v exactly
// the F32 results rounded; q and k within BF16's rounding (the norm's output is rounded before the rotation).
TEST(AttentionDecodeInputs, Bf16RowsGiveBf16Results) {
  const int64_t N = 2, Hq = 2, Hkv = 1, D = 8;
  const Tensor q = random_tensor({N, Hq, D}, 61), k = random_tensor({N, Hkv, D}, 62), v = random_tensor({N, Hkv, D}, 63);
  const Tensor gate = random_tensor({N, Hq, D}, 64, -4.0, 4.0);
  const Tensor qkv = test::packed_qkv(q, gate, k, v).to(DType::bf16), qkv32 = qkv.to(DType::f32);
  const Tensor p = Tensor::from_vector<int32_t>({N}, {1, 3});
  RmsNormOptions norm;
  const std::optional<RopeOptions> rope = RopeOptions{1e4, 4};
  Tensor kc = Tensor::zeros({N, 4, Hkv, D}, DType::bf16), vc = kc.clone();
  Tensor kc32 = Tensor::zeros({N, 4, Hkv, D}, DType::f32), vc32 = kc32.clone();
  const AttentionDecodeInputs got = attention_decode_inputs(qkv, Hq, Hkv, Tensor(), Tensor(), norm, rope, kc, vc, p);
  const AttentionDecodeInputs want =
      attention_decode_inputs(qkv32, Hq, Hkv, Tensor(), Tensor(), norm, rope, kc32, vc32, p);
  EXPECT_EQ(got.q.dtype(), DType::bf16);
  EXPECT_EQ(got.gate.dtype(), DType::bf16);
  EXPECT_LE(rel_rms_error(got.q, want.q), 8e-3);
  EXPECT_LE(rel_rms_error(kc, kc32), 8e-3);
  EXPECT_EQ(rel_rms_error(got.gate, want.gate.to(DType::bf16)), 0.0);
  EXPECT_EQ(rel_rms_error(vc, vc32.to(DType::bf16)), 0.0);
}

}  // namespace
}  // namespace gdn2
