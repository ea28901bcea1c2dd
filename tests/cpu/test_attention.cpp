// Causal GQA softmax attention forward: against the naive full-matrix reference (training, chunked prefill,
// decode, GQA, windows, odd sizes, dtypes), decode against a growing KV cache, huge logits, typed errors.
#include <gtest/gtest.h>

#include <string>

#include "cpu/attention_ref.h"
#include "cpu/op_test_util.h"
#include "gdn2/ops/attention.h"

namespace gdn2 {
namespace {

using test::attention_reference;
using test::random_tensor;
using test::slice_dim;

struct AttnCase {
  int64_t B, Tq, Tk, Hq, Hkv, D, window;
  double scale = 0;
  std::string name() const {
    return detail::concat("B", B, "_Tq", Tq, "_Tk", Tk, "_Hq", Hq, "_Hkv", Hkv, "_D", D, "_W", window, "_scale", scale);
  }
};

const AttnCase kCases[] = {
    {2, 7, 7, 2, 2, 8, 0},       {1, 1, 1, 1, 1, 8, 0},        {1, 33, 33, 4, 1, 24, 0},   // training / prefill
    {2, 33, 33, 4, 2, 8, 5},     {2, 7, 7, 4, 2, 8, 1},        {1, 33, 33, 2, 2, 24, 33},  // windows 5, 1, = Tk
    {1, 33, 33, 2, 1, 8, 1000},  {2, 1, 33, 4, 2, 24, 0},      {2, 1, 33, 4, 1, 8, 5},     // W > Tk; decode
    {1, 7, 33, 4, 2, 8, 0},      {1, 7, 33, 4, 1, 24, 5},      {2, 1, 7, 2, 2, 8, 1},      // chunked prefill
    {1, 130, 130, 2, 1, 16, 0},  {1, 100, 150, 4, 2, 8, 37},   {1, 70, 200, 2, 2, 8, 0},   // several row tiles
    {1, 65, 65, 1, 1, 8, 64},    {2, 7, 33, 4, 4, 8, 0, 0.3},  {1, 1, 200, 4, 1, 8, 70},   // custom scale
};

TEST(Attention, ForwardMatchesNaiveReference) {
  for (const AttnCase& c : kCases) {
    SCOPED_TRACE(c.name());
    const Tensor q = random_tensor({c.B, c.Tq, c.Hq, c.D}, 1), k = random_tensor({c.B, c.Tk, c.Hkv, c.D}, 2, -2, 2),
                 v = random_tensor({c.B, c.Tk, c.Hkv, c.D}, 3);
    const AttentionOptions opt{c.scale, c.window};
    const test::AttentionRef ref = attention_reference(q, k, v, c.scale, c.window);
    const AttentionResult r64 = attention_forward(q, k, v, opt);
    EXPECT_EQ(r64.o.dtype(), DType::f64);
    EXPECT_EQ(r64.o.shape(), q.shape());
    EXPECT_EQ(r64.lse.shape(), (Shape{c.B, c.Hq, c.Tq}));
    EXPECT_LE(rel_rms_error(r64.o, ref.o), 1e-14);
    EXPECT_LE(rel_rms_error(r64.lse, ref.lse), 1e-14);
    const AttentionResult r32 = attention_forward(q.to(DType::f32), k.to(DType::f32), v.to(DType::f32), opt);
    EXPECT_EQ(r32.o.dtype(), DType::f32);
    EXPECT_EQ(r32.lse.dtype(), DType::f32);
    EXPECT_LE(rel_rms_error(r32.o, ref.o), 1e-6);
    EXPECT_LE(rel_rms_error(r32.lse, ref.lse), 1e-6);
  }
}

TEST(Attention, WindowEdgeCases) {
  const Tensor q = random_tensor({2, 9, 4, 8}, 4), k = random_tensor({2, 9, 2, 8}, 5),
               v = random_tensor({2, 9, 2, 8}, 6);
  // W >= Tk is full causal attention, bitwise.
  const AttentionResult full = attention_forward(q, k, v, {0, 0});
  for (int64_t w : {9, 10, 1 << 20}) EXPECT_EQ(rel_rms_error(attention_forward(q, k, v, {0, w}).o, full.o), 0.0);
  // W = 1: every query sees only its own key, so o is its own v (the kv head of its group) and lse = scale·q·k.
  const AttentionResult self = attention_forward(q, k, v, {0, 1});
  const std::vector<double> o = self.o.to_f64_vector(), vv = v.to_f64_vector();
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t t = 0; t < 9; ++t)
      for (int64_t h = 0; h < 4; ++h)
        for (int64_t d = 0; d < 8; ++d)
          ASSERT_EQ(o[((b * 9 + t) * 4 + h) * 8 + d], vv[((b * 9 + t) * 2 + h / 2) * 8 + d]);
}

TEST(Attention, InputDtypesComputeInFloat) {
  const Tensor q = random_tensor({1, 9, 2, 8}, 7), k = random_tensor({1, 12, 1, 8}, 8),
               v = random_tensor({1, 12, 1, 8}, 9);
  const AttentionResult ref = attention_forward(q.to(DType::bf16).to(DType::f64), k.to(DType::f16).to(DType::f64),
                                                v.to(DType::bf16).to(DType::f64));
  const AttentionResult r = attention_forward(q.to(DType::bf16), k.to(DType::f16), v.to(DType::bf16));
  EXPECT_EQ(r.o.dtype(), DType::f32);
  EXPECT_LE(rel_rms_error(r.o, ref.o), 1e-6);
}

// Decode: one query at a time against a KV cache holding the first t + 1 tokens, and chunked prefill, both
// reproduce the full causal forward row by row.
TEST(Attention, DecodeAgainstGrowingCacheMatchesFullForward) {
  const int64_t T = 23;
  for (int64_t window : {0, 1, 6}) {
    for (DType dt : {DType::f64, DType::f32}) {
      SCOPED_TRACE("W" + std::to_string(window) + (dt == DType::f64 ? " f64" : " f32"));
      const Tensor q = random_tensor({2, T, 4, 8}, 10).to(dt), k = random_tensor({2, T, 2, 8}, 11).to(dt),
                   v = random_tensor({2, T, 2, 8}, 12).to(dt);
      const AttentionResult full = attention_forward(q, k, v, {0, window});
      const double tol = dt == DType::f64 ? 1e-15 : 1e-6;
      for (int64_t t = 0; t < T; ++t) {
        const AttentionResult step = attention_forward(
            slice_dim(q, 1, t, t + 1).to(dt), slice_dim(k, 1, 0, t + 1).to(dt), slice_dim(v, 1, 0, t + 1).to(dt),
            {0, window});
        EXPECT_LE(rel_rms_error(step.o, slice_dim(full.o, 1, t, t + 1)), tol) << "token " << t;
        EXPECT_LE(rel_rms_error(step.lse, slice_dim(full.lse, 2, t, t + 1)), tol) << "token " << t;
      }
      for (int64_t t0 = 0; t0 < T; t0 += 7) {
        const int64_t t1 = std::min(T, t0 + 7);
        const AttentionResult chunk = attention_forward(slice_dim(q, 1, t0, t1).to(dt), slice_dim(k, 1, 0, t1).to(dt),
                                                        slice_dim(v, 1, 0, t1).to(dt), {0, window});
        EXPECT_LE(rel_rms_error(chunk.o, slice_dim(full.o, 1, t0, t1)), tol) << "chunk at " << t0;
      }
    }
  }
}

// scale · q·k around ±1e4: the max-subtracted softmax stays finite and accurate, and so do the gradients.
TEST(Attention, HugeLogitsStayFinite) {
  const int64_t T = 17, D = 16;
  Tensor q = random_tensor({1, T, 2, D}, 13, 20, 30), k = random_tensor({1, T, 1, D}, 14, 20, 30);
  k.data<double>()[3 * D] = -400;  // one key with a hugely negative logit
  const Tensor v = random_tensor({1, T, 1, D}, 15), d_o = random_tensor({1, T, 2, D}, 16);
  const AttentionOptions opt{1.0, 0};  // q·k ≈ 16 · 625 = 1e4
  const test::AttentionRef ref = attention_reference(q, k, v, 1.0, 0);
  for (DType dt : {DType::f64, DType::f32}) {
    const AttentionResult r = attention_forward(q.to(dt), k.to(dt), v.to(dt), opt);
    ASSERT_TRUE(all_finite(r.o));
    ASSERT_TRUE(all_finite(r.lse));
    EXPECT_LE(rel_rms_error(r.o, ref.o), dt == DType::f64 ? 1e-12 : 1e-2);  // f32 logits carry ~1e-3 absolute error
    EXPECT_LE(rel_rms_error(r.lse, ref.lse), dt == DType::f64 ? 1e-14 : 1e-6);
    const AttentionGrads g = attention_backward(d_o.to(dt), q.to(dt), k.to(dt), v.to(dt), r.o, r.lse, opt);
    EXPECT_TRUE(all_finite(g.dq));
    EXPECT_TRUE(all_finite(g.dk));
    EXPECT_TRUE(all_finite(g.dv));
  }
}

TEST(Attention, EmptyQueriesGiveEmptyOutputs) {
  const Tensor q = random_tensor({2, 0, 4, 8}, 1), k = random_tensor({2, 5, 2, 8}, 2),
               v = random_tensor({2, 5, 2, 8}, 3);
  const AttentionResult r = attention_forward(q, k, v);
  EXPECT_EQ(r.o.shape(), q.shape());
  EXPECT_EQ(r.lse.shape(), (Shape{2, 4, 0}));
  const AttentionGrads g = attention_backward(r.o, q, k, v, r.o, r.lse);
  EXPECT_EQ(g.dq.shape(), q.shape());
  EXPECT_EQ(rel_rms_error(g.dk, Tensor::zeros(k.shape(), DType::f64)), 0.0);
  EXPECT_EQ(rel_rms_error(g.dv, Tensor::zeros(v.shape(), DType::f64)), 0.0);
}

TEST(Attention, BadArgumentsThrowTypedErrors) {
  const Tensor q = random_tensor({2, 5, 4, 8}, 1), k = random_tensor({2, 7, 2, 8}, 2),
               v = random_tensor({2, 7, 2, 8}, 3);
  EXPECT_NO_THROW(attention_forward(q, k, v));
  auto kv = [](const Shape& s) { return random_tensor(s, 2); };
  EXPECT_THROW(attention_forward(q, kv({2, 4, 2, 8}), kv({2, 4, 2, 8})), ShapeError);  // Tq > Tk
  EXPECT_THROW(attention_forward(q, kv({2, 7, 3, 8}), kv({2, 7, 3, 8})), ShapeError);  // Hq % Hkv
  EXPECT_THROW(attention_forward(q, kv({2, 7, 2, 6}), kv({2, 7, 2, 6})), ShapeError);  // D
  EXPECT_THROW(attention_forward(q, kv({1, 7, 2, 8}), kv({1, 7, 2, 8})), ShapeError);  // B
  EXPECT_THROW(attention_forward(q, k, random_tensor({2, 7, 1, 8}, 3)), ShapeError);                              // v
  EXPECT_THROW(attention_forward(q.reshape({10, 4, 8}), k, v), ShapeError);
  EXPECT_THROW(attention_forward(q, k.reshape({14, 2, 8}), v), ShapeError);
  EXPECT_THROW(attention_forward(random_tensor({2, 5, 4, 0}, 1), random_tensor({2, 7, 2, 0}, 2),
                                 random_tensor({2, 7, 2, 0}, 3)), ShapeError);
  EXPECT_THROW(attention_forward(q.to(DType::i32), k, v), DTypeError);
  EXPECT_THROW(attention_forward(q, k, v.to(DType::i64)), DTypeError);
  EXPECT_THROW(attention_forward(Tensor(), k, v), ValueError);
  EXPECT_THROW(attention_forward(q, k, v, {-1.0, 0}), ValueError);
  EXPECT_THROW(attention_forward(q, k, v, {std::nan(""), 0}), ValueError);
  EXPECT_THROW(attention_forward(q, k, v, {0, -2}), ValueError);
  const AttentionResult r = attention_forward(q, k, v);
  EXPECT_NO_THROW(attention_backward(r.o, q, k, v, r.o, r.lse));
  EXPECT_THROW(attention_backward(random_tensor({2, 5, 4, 7}, 1), q, k, v, r.o, r.lse), ShapeError);  // do
  EXPECT_THROW(attention_backward(r.o, q, k, v, r.o.reshape({2, 5, 2, 16}), r.lse), ShapeError);     // o
  EXPECT_THROW(attention_backward(r.o, q, k, v, r.o, r.lse.reshape({2, 5, 4})), ShapeError);          // lse
  EXPECT_THROW(attention_backward(r.o, q, k, v, r.o, Tensor()), ValueError);
  EXPECT_THROW(attention_backward(r.o, q, k, v, r.o, r.lse.to(DType::i32)), DTypeError);
  EXPECT_THROW(attention_backward(Tensor(), q, k, v, r.o, r.lse), ValueError);
}

}  // namespace
}  // namespace gdn2
