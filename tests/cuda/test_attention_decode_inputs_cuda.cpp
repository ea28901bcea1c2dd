// A decode step's attention inputs on the GPU (one launch from the fused projection's rows) against the CPU's split,
// norm, rotation, cache writes and sigmoid on the same values: F32, BF16 and F16, odd head dims, partial, full and no
// rotation, weights or none, GQA groups; a position outside the cache writes nothing and still gives q and the gate;
// bad calls refused.
#include <gtest/gtest.h>

#include <optional>
#include <vector>

#include "cpu/packed_qkv.h"
#include "cuda/op_cuda_util.h"
#include "cuda/require_gpu.h"
#include "gdn2/ops/attention.h"

namespace gdn2 {
namespace {

using test::gpu;
using test::held;

struct Case {
  int64_t N, Hq, Hkv, D;
  int64_t rd;  // -1: no rotation, 0: all of D
  bool weights, zero_centred;
};

TEST(AttentionDecodeInputsCuda, MatchesCpu) {
  REQUIRE_GPU();
  const std::vector<Case> cases{{5, 4, 2, 64, 16, true, true},   {3, 3, 1, 40, 0, true, false},
                                {2, 2, 2, 128, -1, false, false}, {64, 16, 4, 128, 32, true, true},
                                {1, 1, 1, 256, 64, true, true},   {4, 6, 3, 70, 10, true, true}};
  for (const Case& c : cases)
    for (DType dt : test::kGpuTypes) {
      const int64_t S = c.N + 1, L = 9;
      const Tensor q = held({c.N, c.Hq, c.D}, 41, dt), k = held({c.N, c.Hkv, c.D}, 42, dt);
      const Tensor v = held({c.N, c.Hkv, c.D}, 43, dt), gate = held({c.N, c.Hq, c.D}, 46, dt, -6.0, 6.0);
      const Tensor qkv = test::packed_qkv(q.to(dt), gate.to(dt), k.to(dt), v.to(dt));
      const Tensor qw = c.weights ? held({c.D}, 44, DType::f32, -0.5, 0.5) : Tensor();
      const Tensor kw = c.weights ? held({c.D}, 45, DType::f32, -0.5, 0.5) : Tensor();
      std::vector<int32_t> pos;
      for (int64_t n = 0; n < c.N; ++n) pos.push_back(static_cast<int32_t>((n * 5 + 3) % L));
      const Tensor p = Tensor::from_vector<int32_t>({c.N}, pos);
      RmsNormOptions norm;
      norm.eps = 1e-6;
      norm.zero_centred = c.zero_centred;
      const std::optional<RopeOptions> rope =
          c.rd < 0 ? std::nullopt : std::optional<RopeOptions>(RopeOptions{1e6, c.rd});
      Tensor kc = Tensor::zeros({S, L, c.Hkv, c.D}, dt), vc = Tensor::zeros({S, L, c.Hkv, c.D}, dt);
      Tensor kg = gpu(kc, dt), vg = gpu(vc, dt);
      // The reference: the CPU op (the ops in turn) on the same values in dt, so its norm is rounded as the GPU's.
      const AttentionDecodeInputs want = attention_decode_inputs(qkv, c.Hq, c.Hkv, qw, kw, norm, rope, kc, vc, p);
      const AttentionDecodeInputs got = attention_decode_inputs(gpu(qkv, dt), c.Hq, c.Hkv, gpu(qw, DType::f32),
                                                                gpu(kw, DType::f32), norm, rope, kg, vg,
                                                                p.to(Device::cuda));
      const std::string what = "N" + std::to_string(c.N) + " D" + std::to_string(c.D) + " rd" + std::to_string(c.rd);
      EXPECT_EQ(got.q.dtype(), dt);
      EXPECT_EQ(got.gate.dtype(), dt);
      EXPECT_CLOSE(got.q, want.q, dt, what + " q");
      EXPECT_CLOSE(got.gate, want.gate, dt, what + " gate");
      EXPECT_CLOSE(kg, kc, dt, what + " k cache");
      EXPECT_EQ(rel_rms_error(vg, vc), 0.0) << what << " v cache " << dtype_name(dt);
    }
}

// Positions outside [0, L) are read on the device without a check: such a row's key and value are not written, its q
// is still normed and rotated at that position and its gate given.
TEST(AttentionDecodeInputsCuda, PositionOutsideTheCacheWritesNothing) {
  REQUIRE_GPU();
  const DType dt = DType::bf16;
  const Tensor q = held({2, 2, 64}, 51, dt), k = held({2, 1, 64}, 52, dt), v = held({2, 1, 64}, 53, dt);
  const Tensor gate = held({2, 2, 64}, 54, dt);
  const Tensor qkv = gpu(test::packed_qkv(q.to(dt), gate.to(dt), k.to(dt), v.to(dt)), dt);
  RmsNormOptions norm;
  norm.eps = 1e-6;
  const RopeOptions ro{1e4, 16};
  Tensor kg = Tensor::zeros({2, 4, 1, 64}, dt, Device::cuda), vg = Tensor::zeros({2, 4, 1, 64}, dt, Device::cuda);
  const AttentionDecodeInputs got = attention_decode_inputs(qkv, 2, 1, Tensor(), Tensor(), norm, ro, kg, vg,
                                                            Tensor::from_vector<int32_t>({2}, {4, -1}).to(Device::cuda));
  for (double x : kg.to_f64_vector()) EXPECT_EQ(x, 0.0);
  for (double x : vg.to_f64_vector()) EXPECT_EQ(x, 0.0);
  const Tensor qn = rms_norm_forward(q.to(dt), Tensor(), Tensor(), norm).y;
  const Tensor want = rope_forward(qn.reshape({2, 1, 2, 64}), Tensor::from_vector<int32_t>({2, 1}, {4, -1}), ro);
  EXPECT_CLOSE(got.q, want.reshape({2, 2, 64}), dt, "q");
  EXPECT_CLOSE(got.gate, sigmoid_forward(gate), dt, "gate");  // gate: dt's values in F32
  // Bad calls: caches of another dtype, positions on the CPU, a head dim above 256.
  Tensor k32 = Tensor::zeros({2, 4, 1, 64}, DType::f32, Device::cuda);
  EXPECT_THROW(attention_decode_inputs(qkv, 2, 1, Tensor(), Tensor(), norm, ro, k32, k32,
                                       Tensor::from_vector<int32_t>({2}, {0, 1}).to(Device::cuda)),
               DTypeError);
  EXPECT_THROW(attention_decode_inputs(qkv, 2, 1, Tensor(), Tensor(), norm, ro, kg, vg,
                                       Tensor::from_vector<int32_t>({2}, {0, 1})),
               ShapeError);
  Tensor big = Tensor::zeros({1, 2, 1, 264}, dt, Device::cuda);
  EXPECT_THROW(attention_decode_inputs(Tensor::zeros({1, 4 * 264}, dt, Device::cuda), 1, 1, Tensor(), Tensor(), norm,
                                       ro, big, big, Tensor::zeros({1}, DType::i32, Device::cuda)),
               UnsupportedError);
}

}  // namespace
}  // namespace gdn2
