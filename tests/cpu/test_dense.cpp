// CPU dense ops: SwiGLU of a packed gate | up, and linear products added into a tensor (forward y, backward dx).
#include <gtest/gtest.h>

#include <cmath>

#include "cpu/op_test_util.h"
#include "gdn2/ops/dense.h"

namespace gdn2 {
namespace {

using test::random_tensor;

TEST(Dense, PackedSwigluMatchesTwoOperands) {
  const Tensor gate = random_tensor({3, 5, 7}, 1), up = random_tensor({3, 5, 7}, 2);
  const Tensor packed = concat_last({gate, up});
  const Tensor y = swiglu_forward(packed), want = swiglu_forward(gate, up);
  ASSERT_EQ(y.shape(), want.shape());
  EXPECT_LE(rel_rms_error(y, want), 1e-15);
  EXPECT_THROW(swiglu_forward(random_tensor({2, 3}, 3)), ShapeError);  // odd last extent
}

TEST(Dense, LinearAddsIntoATensor) {
  const Tensor x = random_tensor({4, 6}, 4), w = random_tensor({5, 6}, 5), b = random_tensor({5}, 6);
  const Tensor acc = random_tensor({4, 5}, 7), dy = random_tensor({4, 5}, 8), dacc = random_tensor({4, 6}, 9);
  Tensor into = acc.clone();
  const Tensor y = linear_forward(x, w, b, &into);
  EXPECT_EQ(y.raw(), into.raw());
  Tensor want = linear_forward(x, w, b);
  add_inplace(want, acc);
  EXPECT_LE(rel_rms_error(y, want), 1e-15);
  Tensor dx_into = dacc.clone();
  linear_backward(dy, x, w, nullptr, nullptr, &dx_into);
  Tensor dx_want = linear_backward(dy, x, w, nullptr, nullptr);
  add_inplace(dx_want, dacc);
  EXPECT_LE(rel_rms_error(dx_into, dx_want), 1e-15);
  Tensor wrong = random_tensor({4, 4}, 10);
  EXPECT_THROW(linear_forward(x, w, b, &wrong), ShapeError);
  EXPECT_THROW(linear_backward(dy, x, w, nullptr, nullptr, &wrong), ShapeError);
}

// The weight gradient added to, or written over old values (NaN included) with dweight_overwrite.
TEST(Dense, LinearBackwardWritesOrAddsTheWeightGradient) {
  const Tensor x = random_tensor({4, 6}, 15), w = random_tensor({5, 6}, 16), dy = random_tensor({4, 5}, 17);
  const Tensor old = random_tensor({5, 6}, 18);
  Tensor fresh = Tensor::zeros({5, 6}, DType::f64);
  linear_backward(dy, x, w, &fresh, nullptr);
  Tensor added = old.clone();
  linear_backward(dy, x, w, &added, nullptr);
  Tensor want = fresh.clone();
  add_inplace(want, old);
  EXPECT_LE(rel_rms_error(added, want), 1e-6);
  Tensor written = Tensor::full({5, 6}, DType::f64, std::nan(""));
  linear_backward(dy, x, w, &written, nullptr, nullptr, true);
  EXPECT_LE(rel_rms_error(written, fresh), 0.0);
  Tensor none = Tensor::full({5, 6}, DType::f64, 3.0);  // no rows: written as zeros
  linear_backward(Tensor::zeros({0, 5}, DType::f64), Tensor::zeros({0, 6}, DType::f64), w, &none, nullptr, nullptr,
                  true);
  EXPECT_LE(rel_rms_error(none, Tensor::zeros({5, 6}, DType::f64)), 0.0);
}

// A residual: y = residual + x·w^T + b in a new tensor, the residual untouched; not together with `into`.
TEST(Dense, LinearWithResidualLeavesItAsItIs) {
  const Tensor x = random_tensor({4, 6}, 11), w = random_tensor({5, 6}, 12), b = random_tensor({5}, 13);
  const Tensor res = random_tensor({4, 5}, 14), kept = res.clone();
  const Tensor y = linear_forward(x, w, b, nullptr, res);
  Tensor want = linear_forward(x, w, b);
  add_inplace(want, res);
  EXPECT_NE(y.raw(), res.raw());
  EXPECT_LE(rel_rms_error(y, want), 1e-15);
  EXPECT_EQ(res.to_f64_vector(), kept.to_f64_vector());
  Tensor into = res.clone();
  EXPECT_THROW(linear_forward(x, w, b, &into, res), ShapeError);
  EXPECT_THROW(linear_forward(x, w, b, nullptr, random_tensor({4, 4}, 15)), ShapeError);
}

TEST(Dense, SplitOfOneRowGivesAlignedViews) {
  const Tensor x = random_tensor({1, 1, 10}, 11);  // F64: parts of 2 and 4 elements start 16-byte aligned
  const std::vector<Tensor> views = split_last(x, {2, 4, 4});
  ASSERT_EQ(views.size(), 3u);
  EXPECT_EQ(views[1].raw(), static_cast<const double*>(x.raw()) + 2);
  EXPECT_EQ(views[2].shape(), (Shape{1, 1, 4}));
  EXPECT_EQ(views[2].item(3), x.item(9));
  const std::vector<Tensor> copies = split_last(x, {3, 7});  // 24 bytes: not aligned, so copied
  EXPECT_NE(copies[1].raw(), static_cast<const double*>(x.raw()) + 3);
  EXPECT_EQ(copies[1].item(0), x.item(3));
  const Tensor two = random_tensor({2, 4}, 12);  // two rows: copies
  const std::vector<Tensor> parts = split_last(two, {2, 2});
  EXPECT_EQ(parts[1].item(2), two.item(6));
  EXPECT_NE(parts[0].raw(), two.raw());
}

}  // namespace
}  // namespace gdn2
