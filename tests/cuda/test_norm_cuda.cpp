// The row norms on the GPU against the CPU on the same values (inputs rounded to the GPU dtype first): gated
// RMSNorm in its four variants and the L2 norm, forward and backward, odd widths; bitwise determinism of dweight.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "cuda/op_cuda_util.h"
#include "cuda/require_gpu.h"
#include "gdn2/ops/norm.h"

namespace gdn2 {
namespace {

using test::gpu;
using test::held;

double budget(DType dt) { return test::gpu_budget(dt); }
const auto& kTypes = test::kGpuTypes;

// Gated RMSNorm of x [.., D] on the GPU against the CPU, forward and backward (with and without a residual path's
// gradient), in one of four variants: plain, zero-centred, sigmoid gate, silu gate.
void check_rms(DType dt, const Shape& s, int variant) {
  const int64_t D = s.back();
  const Tensor x = held(s, 7, dt), w = held({D}, 8, DType::f32), dy = held(s, 9, dt);
  const Tensor gate = variant >= 2 ? held(s, 10, dt, -3, 3) : Tensor();
  RmsNormOptions o;
  o.eps = 1e-6;
  o.zero_centred = variant == 1;
  o.gate_activation = variant == 3 ? NormGateActivation::silu : NormGateActivation::sigmoid;
  const RmsNormResult r = rms_norm_forward(gpu(x, dt), w.to(Device::cuda), gpu(gate, dt), o);
  const RmsNormResult ref = rms_norm_forward(x, w, gate, o);
  const std::string what = std::string(dtype_name(dt)) + " rms " + shape_str(s) + " variant " + std::to_string(variant);
  EXPECT_CLOSE(r.y, ref.y, dt, what + " y");
  EXPECT_LE(rel_rms_error(r.rstd, ref.rstd), 1e-5) << what;
  const RmsNormGrads g = rms_norm_backward(gpu(dy, dt), gpu(x, dt), r.rstd, w.to(Device::cuda), gpu(gate, dt), o);
  const RmsNormGrads gr = rms_norm_backward(dy, x, ref.rstd, w, gate, o);
  EXPECT_CLOSE(g.dx, gr.dx, dt, what + " dx");
  EXPECT_LE(rel_rms_error(g.dweight, gr.dweight), 2 * budget(dt)) << what << " dweight";
  if (gate.defined()) {
    EXPECT_CLOSE(g.dgate, gr.dgate, dt, what + " dgate");
  }
  const RmsNormGrads g2 = rms_norm_backward(gpu(dy, dt), gpu(x, dt), r.rstd, w.to(Device::cuda), gpu(gate, dt), o);
  EXPECT_EQ(g2.dweight.to_f64_vector(), g.dweight.to_f64_vector()) << what;
  // A residual path's gradient added to dx in the same pass.
  const Tensor dres = held(s, 11, dt);
  const RmsNormGrads gres =
      rms_norm_backward(gpu(dy, dt), gpu(x, dt), r.rstd, w.to(Device::cuda), gpu(gate, dt), o, gpu(dres, dt));
  const RmsNormGrads gres_ref = rms_norm_backward(dy, x, ref.rstd, w, gate, o, dres);
  EXPECT_CLOSE(gres.dx, gres_ref.dx, dt, what + " dx with dres");
  if (gate.defined()) {
    EXPECT_CLOSE(gres.dgate, gres_ref.dgate, dt, what + " dgate with dres");
  }
}

TEST(NormCuda, RmsNormMatchesCpu) {
  REQUIRE_GPU();
  for (DType dt : kTypes)
    for (int64_t D : {1, 7, 64, 130, 2048})
      for (int variant = 0; variant < 4; ++variant) check_rms(dt, {3, 37, D}, variant);
}

// Shapes that give the backward's blocks several row steps with a ragged last one (more row groups than its 1024
// blocks: the rows fetched a step ahead), and rows wider than 2048 (blocks of 1024 threads, one or two pieces each).
TEST(NormCuda, RmsNormManyRowsAndWideRows) {
  REQUIRE_GPU();
  for (DType dt : kTypes) {
    check_rms(dt, {2100, 2048}, 3);
    check_rms(dt, {9000, 130}, 2);
    check_rms(dt, {5, 5000}, 0);
    check_rms(dt, {3, 9000}, 3);
  }
}

TEST(NormCuda, L2NormMatchesCpu) {
  REQUIRE_GPU();
  for (DType dt : kTypes)
    for (int64_t D : {1, 7, 64, 128, 130}) {
      const Shape s{2, 37, 3, D};
      const Tensor x = held(s, 30, dt), dy = held(s, 31, dt);
      const L2NormResult r = l2_norm_forward(gpu(x, dt), 1e-6);
      const L2NormResult ref = l2_norm_forward(x, 1e-6);
      const std::string what = "l2 D " + std::to_string(D);
      ASSERT_EQ(r.y.dtype(), dt);
      ASSERT_EQ(r.rstd.shape(), ref.rstd.shape());
      EXPECT_CLOSE(r.y, ref.y, dt, what + " y");
      EXPECT_LE(rel_rms_error(r.rstd, ref.rstd), 1e-5) << what;
      // The backward from the reference's y rounded to dt, as the GPU holds it.
      const Tensor y = r.y.cpu().to(DType::f32);
      EXPECT_CLOSE(l2_norm_backward(gpu(dy, dt), r.y, r.rstd), l2_norm_backward(dy, y, r.rstd.cpu()), dt, what + " dx");
    }
  EXPECT_THROW(l2_norm_backward(Tensor::zeros({2, 4}, DType::f32, Device::cuda), Tensor::zeros({2, 4}, DType::f32, Device::cuda),
                                Tensor::zeros({2}, DType::bf16, Device::cuda)),
               DTypeError);
  EXPECT_THROW(rms_norm_forward(Tensor::zeros({2, 4}, DType::f32, Device::cuda), Tensor::zeros({4}, DType::f32), {}, {}),
               ShapeError);
}

}  // namespace
}  // namespace gdn2
