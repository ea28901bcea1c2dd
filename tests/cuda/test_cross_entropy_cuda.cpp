// The CUDA fused LM-head cross-entropy against the CPU op on the same values (h and W rounded to the GPU dtype first,
// the CPU in F32): odd shapes, several row blocks (forced small through cuda::lm_head_loss), ignored targets including
// whole ignored blocks and all-ignored batches, targets on either device, F32 and low-precision dW accumulation,
// bitwise determinism, out-of-range targets and bad calls refused.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "cpu/op_test_util.h"
#include "cuda/cross_entropy.h"
#include "cuda/require_gpu.h"
#include "gdn2/ops/dense.h"

namespace gdn2 {
namespace {

using test::random_tensor;

// Budgets (SPEC §6): logits in fp32 on both sides; dlogits round to the dtype on the GPU, then dh rounds once more.
double budget(DType dt) { return dt == DType::f32 ? 1e-5 : dt == DType::bf16 ? 8e-3 : 2e-3; }
double loss_budget(DType dt) { return dt == DType::f32 ? 1e-5 : 1e-3; }

Tensor held(const Shape& s, uint64_t seed, DType dt, double lo, double hi) {
  return random_tensor(s, seed, lo, hi).to(dt).to(DType::f32);
}
Tensor gpu(const Tensor& t, DType dt) { return t.to(dt).to(Device::cuda); }

// Targets spread over [0, V); -1 on the first `lead` rows (whole row blocks when forced small) and every 11th row.
Tensor make_targets(int64_t N, int64_t V, int64_t lead) {
  std::vector<int32_t> t;
  for (int64_t i = 0; i < N; ++i) t.push_back(i < lead || i % 11 == 3 ? -1 : static_cast<int32_t>((i * 31 + 5) % V));
  return Tensor::from_vector<int32_t>({N}, t);
}

struct CeCase {
  int64_t N, D, V;
  std::vector<int64_t> rows_per_block;  // 0: the public op's automatic blocks; else forced
};

TEST(CrossEntropyCuda, MatchesCpu) {
  REQUIRE_GPU();
  const CeCase cases[] = {
      {1, 1, 1, {0}},              // one row, one class: loss 0, gradients 0
      {37, 7, 33, {0, 5, 1}},      // rows 0..5 ignored: the first block(s) hold no counted row
      {37, 130, 1, {0, 8}},        // one class
      {1000, 1, 33, {0, 64}},      // D 1
      {1000, 130, 5000, {0, 300}}, // several blocks with a short last one
  };
  uint64_t seed = 600;
  for (const CeCase& c : cases)
    for (DType dt : {DType::f32, DType::bf16, DType::f16}) {
      const Tensor h = held({c.N, c.D}, ++seed, dt, -1, 1), W = held({c.V, c.D}, ++seed, dt, -1, 1);
      const Tensor targets = make_targets(c.N, c.V, c.N > 1 ? 6 : 0);
      int64_t count = 0;
      for (double t : targets.to_f64_vector()) count += t >= 0 ? 1 : 0;
      // F16 dlogits (scale · (softmax - onehot)) need a loss scale to stay in f16's normal range, as in any f16
      // training: grad_scale = count makes the scale 1. BF16 and F32 take a plain mean (scale 0.5 / count).
      const double scale = dt == DType::f16 ? static_cast<double>(count) : 0.5;
      Tensor dw_ref = Tensor::zeros({c.V, c.D}, DType::f32);
      const LmLoss ref = lm_head_cross_entropy(h, W, targets, true, &dw_ref, scale);
      ASSERT_EQ(ref.count, count);
      const Tensor hg = gpu(h, dt), Wg = gpu(W, dt);
      for (int64_t rows : c.rows_per_block) {
        const std::string what = "N " + std::to_string(c.N) + " D " + std::to_string(c.D) + " V " +
                                 std::to_string(c.V) + " rows/block " + std::to_string(rows) + " " +
                                 std::string(dtype_name(dt));
        auto run = [&](const Tensor& t, bool want_grad, Tensor* dw) {
          return rows == 0 ? lm_head_cross_entropy(hg, Wg, t, want_grad, dw, scale)
                           : cuda::lm_head_loss(hg, Wg, t, count, want_grad, dw, scale, rows);
        };
        Tensor dw = Tensor::zeros({c.V, c.D}, DType::f32, Device::cuda);
        const LmLoss got = run(targets, true, &dw);
        EXPECT_EQ(got.count, ref.count) << what;
        const double el = std::abs(got.loss - ref.loss) / std::max(std::abs(ref.loss), 1e-30);
        ASSERT_EQ(got.dh.dtype(), dt) << what;
        ASSERT_EQ(got.dh.shape(), (Shape{c.N, c.D})) << what;
        const double edh = rel_rms_error(got.dh, ref.dh), edw = rel_rms_error(dw, dw_ref);
        std::printf("[ errors   ] cross-entropy %s: loss %.2e dh %.2e dW %.2e\n", what.c_str(), el, edh, edw);
        EXPECT_NEAR(got.loss, ref.loss, loss_budget(dt) * std::abs(ref.loss) + 1e-6) << what;
        EXPECT_LE(edh, budget(dt)) << what;
        EXPECT_LE(edw, dt == DType::f32 ? 1e-5 : 2 * budget(dt)) << what;

        // Targets on the GPU: the same computation, so the same bits (and a second run: determinism).
        Tensor dw2 = Tensor::zeros({c.V, c.D}, DType::f32, Device::cuda);
        const LmLoss again = run(targets.to(Device::cuda), true, &dw2);
        EXPECT_EQ(again.loss, got.loss) << what;
        EXPECT_EQ(again.dh.to_f64_vector(), got.dh.to_f64_vector()) << what;
        EXPECT_EQ(dw2.to_f64_vector(), dw.to_f64_vector()) << what;

        // dW accumulates: a second micro-batch doubles it.
        run(targets, true, &dw2);
        Tensor twice = dw.clone();
        scale_inplace(twice, 2.0);
        EXPECT_LE(rel_rms_error(dw2, twice), 1e-6) << what;

        // Without gradients: the same loss, no dh, dW untouched.
        const LmLoss fwd = run(targets, false, &dw2);
        EXPECT_EQ(fwd.loss, got.loss) << what;
        EXPECT_FALSE(fwd.dh.defined()) << what;
        EXPECT_LE(rel_rms_error(dw2, twice), 1e-6) << what;

        if (dt != DType::f32) {  // dW in W's dtype: each block's sum rounded once
          Tensor dw_low = Tensor::zeros({c.V, c.D}, dt, Device::cuda);
          run(targets, true, &dw_low);
          EXPECT_EQ(dw_low.dtype(), dt);
          EXPECT_LE(rel_rms_error(dw_low, dw_ref), 2 * budget(dt)) << what << " low-precision dW";
        }
      }
    }
}

TEST(CrossEntropyCuda, AllIgnoredRows) {
  REQUIRE_GPU();
  const int64_t N = 37, D = 7, V = 33;
  for (DType dt : {DType::f32, DType::bf16}) {
    const Tensor h = held({N, D}, 700, dt, -1, 1), W = held({V, D}, 701, dt, -1, 1);
    const Tensor none = Tensor::full({N}, DType::i32, -1);
    Tensor dw_ref = held({V, D}, 702, DType::f32, -1, 1);
    const LmLoss ref = lm_head_cross_entropy(h, W, none, true, &dw_ref, 1.0);
    const Tensor dw0 = held({V, D}, 702, DType::f32, -1, 1);
    for (bool device_targets : {false, true}) {
      Tensor dw = dw0.to(Device::cuda);
      const LmLoss got =
          lm_head_cross_entropy(gpu(h, dt), gpu(W, dt), device_targets ? none.to(Device::cuda) : none, true, &dw, 1.0);
      EXPECT_EQ(got.count, 0);
      EXPECT_EQ(got.loss, 0.0);
      EXPECT_EQ(got.loss, ref.loss);
      ASSERT_TRUE(got.dh.defined());
      EXPECT_EQ(got.dh.dtype(), dt);
      EXPECT_EQ(got.dh.to_f64_vector(), std::vector<double>(N * D, 0.0));
      EXPECT_EQ(dw.to_f64_vector(), dw0.to_f64_vector()) << "dW untouched";
    }
  }
}

TEST(CrossEntropyCuda, RefusesBadCalls) {
  REQUIRE_GPU();
  const int64_t N = 5, D = 4, V = 6;
  const Tensor h = Tensor::zeros({N, D}, DType::bf16, Device::cuda), W = Tensor::zeros({V, D}, DType::bf16, Device::cuda);
  const Tensor ok = Tensor::from_vector<int32_t>({N}, {0, 1, -1, 5, 2});
  Tensor dw = Tensor::zeros({V, D}, DType::f32, Device::cuda);
  for (const std::vector<int32_t>& bad : {std::vector<int32_t>{0, 1, 6, 2, 3}, std::vector<int32_t>{0, -2, 1, 2, 3}}) {
    const Tensor t = Tensor::from_vector<int32_t>({N}, bad);
    EXPECT_THROW(lm_head_cross_entropy(h, W, t, true, &dw), ValueError);
    EXPECT_THROW(lm_head_cross_entropy(h, W, t.to(Device::cuda), true, &dw), ValueError);
  }
  EXPECT_EQ(dw.to_f64_vector(), std::vector<double>(V * D, 0.0)) << "refused before any write";
  EXPECT_THROW(lm_head_cross_entropy(h, W.to(DType::f16), ok, false, nullptr), DTypeError);        // a dtype mix
  EXPECT_THROW(lm_head_cross_entropy(h, W.to(Device::cpu), ok, false, nullptr), ShapeError);       // another device
  EXPECT_THROW(lm_head_cross_entropy(h.to(DType::f64), W.to(DType::f64), ok, false, nullptr), DTypeError);
  Tensor dw_f16 = Tensor::zeros({V, D}, DType::f16, Device::cuda), dw_cpu = Tensor::zeros({V, D}, DType::f32);
  Tensor dw_shape = Tensor::zeros({V, D + 1}, DType::f32, Device::cuda);
  EXPECT_THROW(lm_head_cross_entropy(h, W, ok, true, &dw_f16), DTypeError);  // neither F32 nor W's dtype
  EXPECT_THROW(lm_head_cross_entropy(h, W, ok, true, &dw_cpu), ShapeError);
  EXPECT_THROW(lm_head_cross_entropy(h, W, ok, true, &dw_shape), ShapeError);
  EXPECT_THROW(lm_head_cross_entropy(h, W, ok.to(DType::i64), false, nullptr), DTypeError);
  EXPECT_THROW(lm_head_cross_entropy(h, W, Tensor::zeros({N + 1}, DType::i32), false, nullptr), ShapeError);
  EXPECT_THROW(lm_head_cross_entropy(h.to(Device::cpu).to(DType::f32), W.to(Device::cpu).to(DType::f32),
                                     ok.to(Device::cuda), false, nullptr),
               ShapeError);  // GPU targets for a CPU head
  EXPECT_THROW(lm_head_cross_entropy(Tensor::zeros({N, 0}, DType::bf16, Device::cuda),
                                     Tensor::zeros({V, 0}, DType::bf16, Device::cuda), ok, false, nullptr),
               ShapeError);
}

}  // namespace
}  // namespace gdn2
