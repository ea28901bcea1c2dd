// Decode attention on KV caches of fixed capacity against the causal attention op: each sequence's one query over its
// own length (and window) equals attention_forward's last row on that sequence's keys; kv_cache_write places rows;
// bad calls refused.
#include <gtest/gtest.h>

#include <vector>

#include "cpu/op_test_util.h"
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

}  // namespace
}  // namespace gdn2
