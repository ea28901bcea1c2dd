// Attention backward: dq, dk, dv against fp64 central finite differences (GQA, windows, Tq < Tk, several tiles),
// f32 against f64, and bitwise determinism over thread counts.
#include <gtest/gtest.h>
#include <omp.h>

#include <string>

#include "cpu/op_test_util.h"
#include "gdn2/ops/attention.h"

namespace gdn2 {
namespace {

using test::dot;
using test::finite_diff;
using test::random_tensor;

struct GradCase {
  int64_t B, Tq, Tk, Hq, Hkv, D, window;
  double scale = 0;
  std::string name() const {
    return detail::concat("B", B, "_Tq", Tq, "_Tk", Tk, "_Hq", Hq, "_Hkv", Hkv, "_D", D, "_W", window, "_scale", scale);
  }
};

// The last three cross row tiles (64 stacked rows: 64 query rows at G = 1, 32 at G = 2) and key tiles (64 keys).
const GradCase kGradCases[] = {
    {2, 5, 5, 2, 2, 4, 0},   {1, 7, 7, 4, 1, 8, 0},  {1, 7, 7, 4, 2, 8, 3},        {2, 6, 6, 2, 1, 3, 1},
    {1, 1, 9, 4, 2, 8, 0},   {1, 4, 11, 4, 1, 4, 5}, {1, 1, 1, 1, 1, 8, 0},        {1, 3, 9, 2, 1, 5, 100},
    {1, 40, 70, 2, 1, 2, 9}, {1, 70, 70, 1, 1, 2, 0, 0.7},                        {1, 66, 66, 2, 2, 2, 20},
};

// f32 gradients against f64 ones; absolute when the f64 gradient vanishes (one key: the softmax is constant).
double f32_error(const Tensor& g32, const Tensor& g64) {
  const Tensor zero = Tensor::zeros(g64.shape(), DType::f64);
  return rel_rms_error(g64, zero) < 1e-12 ? rel_rms_error(g32, zero) : rel_rms_error(g32, g64);
}

struct Problem {
  Tensor q, k, v, d_o;
  explicit Problem(const GradCase& c)
      : q(random_tensor({c.B, c.Tq, c.Hq, c.D}, 21, -1.5, 1.5)),
        k(random_tensor({c.B, c.Tk, c.Hkv, c.D}, 22, -1.5, 1.5)),
        v(random_tensor({c.B, c.Tk, c.Hkv, c.D}, 23)),
        d_o(random_tensor({c.B, c.Tq, c.Hq, c.D}, 24)) {}
};

TEST(AttentionGrad, MatchesFiniteDifferences) {
  for (const GradCase& c : kGradCases) {
    SCOPED_TRACE(c.name());
    Problem p(c);
    const AttentionOptions opt{c.scale, c.window};
    auto loss = [&]() { return dot(attention_forward(p.q, p.k, p.v, opt).o, p.d_o); };
    const AttentionResult r = attention_forward(p.q, p.k, p.v, opt);
    const AttentionGrads g = attention_backward(p.d_o, p.q, p.k, p.v, r.o, r.lse, opt);
    EXPECT_EQ(g.dq.shape(), p.q.shape());
    EXPECT_EQ(g.dk.shape(), p.k.shape());
    EXPECT_EQ(g.dv.shape(), p.v.shape());
    EXPECT_EQ(g.dq.dtype(), DType::f64);
    EXPECT_LE(rel_rms_error(g.dq, finite_diff(p.q, loss)), 1e-6);
    EXPECT_LE(rel_rms_error(g.dk, finite_diff(p.k, loss)), 1e-6);
    EXPECT_LE(rel_rms_error(g.dv, finite_diff(p.v, loss)), 1e-6);

    const AttentionResult r32 = attention_forward(p.q.to(DType::f32), p.k.to(DType::f32), p.v.to(DType::f32), opt);
    const AttentionGrads g32 = attention_backward(p.d_o.to(DType::f32), p.q.to(DType::f32), p.k.to(DType::f32),
                                                  p.v.to(DType::f32), r32.o, r32.lse, opt);
    EXPECT_EQ(g32.dq.dtype(), DType::f32);
    EXPECT_LE(f32_error(g32.dq, g.dq), 1e-5);
    EXPECT_LE(f32_error(g32.dk, g.dk), 1e-5);
    EXPECT_LE(f32_error(g32.dv, g.dv), 1e-5);
  }
}

// dk and dv sum over the query heads of a group in a fixed order: the same bits for any thread count.
TEST(AttentionGrad, BitwiseReproducibleAcrossThreadCounts) {
  const GradCase c{3, 150, 150, 4, 1, 16, 0};
  Problem p(c);
  const Tensor q = p.q.to(DType::f32), k = p.k.to(DType::f32), v = p.v.to(DType::f32), d_o = p.d_o.to(DType::f32);
  const int keep = omp_get_max_threads();
  AttentionGrads ref;
  for (int threads : {1, 2, 3, 5}) {
    omp_set_num_threads(threads);
    const AttentionResult r = attention_forward(q, k, v, {0, 40});
    const AttentionGrads g = attention_backward(d_o, q, k, v, r.o, r.lse, {0, 40});
    if (threads == 1) {
      ref = g;
      continue;
    }
    EXPECT_EQ(rel_rms_error(g.dq, ref.dq), 0.0) << threads << " threads";
    EXPECT_EQ(rel_rms_error(g.dk, ref.dk), 0.0) << threads << " threads";
    EXPECT_EQ(rel_rms_error(g.dv, ref.dv), 0.0) << threads << " threads";
  }
  omp_set_num_threads(keep);
}

}  // namespace
}  // namespace gdn2
