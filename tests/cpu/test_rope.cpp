// Rotary position embedding: against HF's rotate_half written out (full and partial rotary dims, start offsets
// and explicit I32/I64 positions, Qwen3.5's config), backward vs finite differences, offsets vs longer sequences,
// typed errors.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "cpu/attention_ref.h"
#include "cpu/op_test_util.h"
#include "gdn2/ops/rope.h"

namespace gdn2 {
namespace {

using test::dot;
using test::finite_diff;
using test::random_tensor;
using test::rope_reference;
using test::slice_dim;

std::vector<int64_t> range_positions(int64_t B, int64_t T, int64_t start) {
  std::vector<int64_t> p;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t) p.push_back(start + t);
  return p;
}

struct RopeCase {
  Shape shape;
  int64_t rotary_dim;  // 0: D
  double theta;
  int64_t start;
};

const RopeCase kRopeCases[] = {
    {{2, 7, 3, 8}, 0, 10000, 0},   {{1, 33, 2, 24}, 6, 10000, 5},  {{2, 5, 4, 16}, 4, 500, 11},
    {{1, 1, 1, 2}, 0, 10000, 9},   {{3, 9, 2, 12}, 12, 1e6, 0},    {{1, 4, 2, 10}, 2, 10000, 3},
};

TEST(Rope, ForwardMatchesHfReferenceWithStart) {
  for (const RopeCase& c : kRopeCases) {
    SCOPED_TRACE(shape_str(c.shape) + " rd" + std::to_string(c.rotary_dim));
    const Tensor x = random_tensor(c.shape, 1);
    const RopeOptions opt{c.theta, c.rotary_dim};
    const int64_t rd = c.rotary_dim ? c.rotary_dim : c.shape[3];
    const Tensor ref = rope_reference(x, range_positions(c.shape[0], c.shape[1], c.start), c.theta, rd);
    const Tensor y64 = rope_forward(x, c.start, opt);
    EXPECT_EQ(y64.dtype(), DType::f64);
    EXPECT_EQ(y64.shape(), x.shape());
    EXPECT_LE(rel_rms_error(y64, ref), 1e-14);
    const Tensor y32 = rope_forward(x.to(DType::f32), c.start, opt);
    EXPECT_EQ(y32.dtype(), DType::f32);
    EXPECT_LE(rel_rms_error(y32, ref), 1e-7);
    const Tensor y16 = rope_forward(x.to(DType::bf16), c.start, opt);
    EXPECT_EQ(y16.dtype(), DType::f32);
    EXPECT_LE(rel_rms_error(y16, rope_reference(x.to(DType::bf16), range_positions(c.shape[0], c.shape[1], c.start),
                                                c.theta, rd)),
              1e-7);
    // The features past the rotary dim pass through untouched.
    const std::vector<double> xv = x.to_f64_vector(), yv = y64.to_f64_vector();
    for (size_t i = 0; i < xv.size(); ++i) {
      if (static_cast<int64_t>(i) % c.shape[3] >= rd) {
        ASSERT_EQ(xv[i], yv[i]);
      }
    }
  }
}

TEST(Rope, ExplicitPositions) {
  const Shape s{2, 6, 3, 16};
  const Tensor x = random_tensor(s, 2);
  const std::vector<int64_t> pos = {0, 1, 2, 3, 4, 5, 0, 1, 2, 0, 1, 100000};  // two packed sequences, a big one
  const RopeOptions opt{1e7, 4};
  const Tensor ref = rope_reference(x, pos, 1e7, 4);
  const Tensor p64 = Tensor::from_vector({2, 6}, pos);
  std::vector<int32_t> pos32(pos.begin(), pos.end());
  const Tensor p32 = Tensor::from_vector({2, 6}, pos32);
  EXPECT_LE(rel_rms_error(rope_forward(x, p64, opt), ref), 1e-13);
  EXPECT_LE(rel_rms_error(rope_forward(x, p32, opt), ref), 1e-13);
  EXPECT_LE(rel_rms_error(rope_forward(x.to(DType::f32), p32, opt), ref), 1e-7);
  // Positions start.. in every row are the start form, bitwise.
  const Tensor rows = Tensor::from_vector({2, 6}, range_positions(2, 6, 40));
  EXPECT_EQ(rel_rms_error(rope_forward(x.to(DType::f32), rows, opt), rope_forward(x.to(DType::f32), 40, opt)), 0.0);
}

// Qwen3.5: head_dim 256, rotary_dim 64 (partial_rotary_factor 0.25), theta 1e7, positions deep into a context.
TEST(Rope, Qwen35ConfigAtLargePositions) {
  const Tensor x = random_tensor({1, 3, 2, 256}, 3);
  const RopeOptions opt{1e7, 64};
  const Tensor ref = rope_reference(x, range_positions(1, 3, 262000), 1e7, 64);
  EXPECT_LE(rel_rms_error(rope_forward(x, 262000, opt), ref), 1e-11);  // angles ~3e5 rad carry ~1e-11 rounding
  EXPECT_LE(rel_rms_error(rope_forward(x.to(DType::f32), 262000, opt), ref), 1e-6);
}

TEST(Rope, BackwardMatchesFiniteDifferencesAndInvertsForward) {
  for (const RopeCase& c : kRopeCases) {
    SCOPED_TRACE(shape_str(c.shape) + " rd" + std::to_string(c.rotary_dim));
    Tensor x = random_tensor(c.shape, 4);
    const Tensor dy = random_tensor(c.shape, 5);
    const RopeOptions opt{c.theta, c.rotary_dim};
    auto loss = [&]() { return dot(rope_forward(x, c.start, opt), dy); };
    const Tensor dx = rope_backward(dy, c.start, opt);
    EXPECT_EQ(dx.shape(), x.shape());
    EXPECT_LE(rel_rms_error(dx, finite_diff(x, loss)), 1e-6);
    EXPECT_LE(rel_rms_error(rope_backward(rope_forward(x, c.start, opt), c.start, opt), x), 1e-15);
    const Tensor pos = Tensor::from_vector({c.shape[0], c.shape[1]}, range_positions(c.shape[0], c.shape[1], c.start));
    EXPECT_EQ(rel_rms_error(rope_backward(dy, pos, opt), dx), 0.0);
  }
}

// A token rotated at start offset s equals the same token rotated inside a longer sequence at position s.
TEST(Rope, StartOffsetMatchesLongerSequence) {
  const Tensor x = random_tensor({2, 20, 3, 24}, 6).to(DType::f32);
  const RopeOptions opt{10000, 8};
  const Tensor full = rope_forward(x, 0, opt);
  for (int64_t s : {0, 1, 7, 19}) {
    const Tensor tail = rope_forward(slice_dim(x, 1, s, 20).to(DType::f32), s, opt);
    EXPECT_EQ(rel_rms_error(tail, slice_dim(full, 1, s, 20)), 0.0) << "start " << s;
    const Tensor one = rope_forward(slice_dim(x, 1, s, s + 1).to(DType::f32), s, opt);
    EXPECT_EQ(rel_rms_error(one, slice_dim(full, 1, s, s + 1)), 0.0) << "start " << s;
  }
}

TEST(Rope, BadArgumentsThrowTypedErrors) {
  const Tensor x = random_tensor({2, 5, 3, 8}, 1);
  EXPECT_NO_THROW(rope_forward(x, 0));
  EXPECT_THROW(rope_forward(x, 0, {10000, 3}), ValueError);   // odd
  EXPECT_THROW(rope_forward(x, 0, {10000, 10}), ValueError);  // > D
  EXPECT_THROW(rope_forward(x, 0, {10000, -2}), ValueError);
  EXPECT_THROW(rope_forward(x, 0, {0, 0}), ValueError);
  EXPECT_THROW(rope_forward(x, 0, {-5, 0}), ValueError);
  EXPECT_THROW(rope_forward(random_tensor({2, 5, 3, 7}, 1), 0), ValueError);  // D odd: rotary_dim 0 = D is odd
  EXPECT_THROW(rope_forward(x.reshape({10, 3, 8}), 0), ShapeError);
  EXPECT_THROW(rope_forward(x.to(DType::i32), 0), DTypeError);
  EXPECT_THROW(rope_forward(Tensor(), 0), ValueError);
  EXPECT_THROW(rope_forward(x, Tensor::from_vector<int64_t>({5, 2}, std::vector<int64_t>(10, 0))), ShapeError);
  EXPECT_THROW(rope_forward(x, Tensor::from_vector<double>({2, 5}, std::vector<double>(10, 0))), DTypeError);
  EXPECT_THROW(rope_forward(x, Tensor()), ValueError);
  EXPECT_THROW(rope_backward(x, Tensor::from_vector<int32_t>({2, 4}, std::vector<int32_t>(8, 0))), ShapeError);
  EXPECT_THROW(rope_backward(x, 0, {10000, 5}), ValueError);
}

}  // namespace
}  // namespace gdn2
