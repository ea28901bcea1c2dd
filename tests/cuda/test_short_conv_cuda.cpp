// The short causal convolution on the GPU against the CPU on the same values: with and without bias and caches,
// packed sequences (cu_seqlens on either device, sequences shorter than the taps), forward, backward and the decode
// step; bad calls refused.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "cuda/op_cuda_util.h"
#include "cuda/require_gpu.h"
#include "gdn2/ops/short_conv.h"

namespace gdn2 {
namespace {

using test::gpu;
using test::held;

double budget(DType dt) { return test::gpu_budget(dt); }
const auto& kTypes = test::kGpuTypes;

TEST(ShortConvCuda, MatchesCpu) {
  REQUIRE_GPU();
  // 45 channels: one a thread. An even count without a cache: the training layout's walks (44 and 136: a partial
  // 128-thread block), their 32-row parts across sequence ends (T 37), over several parts (T 150), and 4, 3, 2 and 1
  // taps; with a cache the same channels take the general walks (four a thread in the forward).
  struct Case {
    int64_t C, T, W;
  };
  for (const Case cs : {Case{45, 37, 4}, Case{44, 37, 4}, Case{136, 37, 4}, Case{136, 150, 3}, Case{40, 70, 2},
                        Case{40, 9, 1}})
  for (DType dt : kTypes)
    for (bool bias : {false, true})
      for (bool cache : {false, true}) {
        const int64_t B = 2, C = cs.C, T = cs.T, W = cs.W;
        if (cache && W == 1) continue;  // no inputs to carry
        const Tensor x = held({B, T, C}, 12, dt), w = held({C, 1, W}, 13, DType::f32), dy = held({B, T, C}, 14, dt);
        const Tensor b = bias ? held({C}, 15, DType::f32) : Tensor();
        const Tensor c0 = cache ? held({B, C, W - 1}, 16, DType::f32) : Tensor();
        const auto act = ConvActivation::silu;
        const ShortConvResult r = short_conv_forward(gpu(x, dt), w.to(Device::cuda), gpu(b, DType::f32), act, {},
                                                     gpu(c0, DType::f32), true);
        const ShortConvResult ref = short_conv_forward(x, w, b, act, {}, c0, true);
        const std::string what = "conv C " + std::to_string(C) + " T " + std::to_string(T) + " W " +
                                 std::to_string(W) + " bias " + (bias ? "1" : "0") + " cache " + (cache ? "1" : "0");
        EXPECT_CLOSE(r.y, ref.y, dt, what + " y");
        EXPECT_LE(rel_rms_error(r.final_cache, ref.final_cache), 1e-6) << what;
        const ShortConvGrads g =
            short_conv_backward(gpu(dy, dt), gpu(x, dt), w.to(Device::cuda), gpu(b, DType::f32), act, {}, gpu(c0, DType::f32));
        const ShortConvGrads gr = short_conv_backward(dy, x, w, b, act, {}, c0);
        EXPECT_CLOSE(g.dx, gr.dx, dt, what + " dx");
        EXPECT_LE(rel_rms_error(g.dweight, gr.dweight), 2 * budget(dt)) << what << " dweight";
        EXPECT_EQ(g.dweight.shape(), w.shape());
        if (bias) {
          EXPECT_LE(rel_rms_error(g.dbias, gr.dbias), 2 * budget(dt)) << what << " dbias";
        }
        if (cache) {
          EXPECT_LE(rel_rms_error(g.d_initial_cache, gr.d_initial_cache), 2 * budget(dt)) << what;
        }
        // Decode: the first tokens one by one from the same cache equal the forward.
        Tensor state = cache ? c0.to(Device::cuda) : Tensor::zeros({B, C, W - 1}, DType::f32, Device::cuda);
        const Tensor xs = gpu(x, dt).to(DType::f32).cpu(), yf = r.y.to(DType::f32).cpu();
        for (int64_t t = 0; t < 3; ++t) {
          std::vector<float> row, want;
          for (int64_t bb = 0; bb < B; ++bb)
            for (int64_t c = 0; c < C; ++c) {
              row.push_back(xs.data<float>()[(bb * T + t) * C + c]);
              want.push_back(yf.data<float>()[(bb * T + t) * C + c]);
            }
          const Tensor y = short_conv_step(Tensor::from_vector<float>({B, C}, row).to(dt).to(Device::cuda), state,
                                           w.to(Device::cuda), gpu(b, DType::f32), act);
          EXPECT_CLOSE(y, Tensor::from_vector<float>({B, C}, want), dt, what + " step");
        }
      }
}

// The split decode step (the GDN layer's q | k | v after the conv) writes each part in place: the same values and cache
// as the CPU's step, bf16 and f32 inputs, an empty part and one of an odd size; 4 taps, and 20 (the step takes more
// than the 16 of the forward).
TEST(ShortConvCuda, DecodeStepSplitMatchesCpu) {
  REQUIRE_GPU();
  const int64_t N = 5, C = 37;
  for (int64_t W : {4, 20})
  for (DType dt : kTypes)
    for (const std::vector<int64_t>& sizes : {std::vector<int64_t>{16, 16, 5}, {0, 30, 7}, {37}}) {
      const Tensor x = held({N, C}, 50, dt), w = held({C, W}, 51, DType::f32), c0 = held({N, C, W - 1}, 52, DType::f32);
      Tensor gpu_cache = c0.to(Device::cuda), cpu_cache = c0.clone();
      const std::vector<Tensor> got =
          short_conv_step_split(gpu(x, dt), gpu_cache, w.to(Device::cuda), Tensor(), ConvActivation::silu, sizes);
      const std::vector<Tensor> want =
          short_conv_step_split(gpu(x, dt).cpu(), cpu_cache, w, Tensor(), ConvActivation::silu, sizes);
      ASSERT_EQ(got.size(), sizes.size());
      for (size_t i = 0; i < sizes.size(); ++i) {
        EXPECT_EQ(got[i].shape(), (Shape{N, sizes[i]}));
        if (sizes[i] > 0) {
          EXPECT_CLOSE(got[i], want[i], dt, "part " + std::to_string(i));
        }
      }
      EXPECT_LE(rel_rms_error(gpu_cache, cpu_cache), 1e-6);
    }
}

TEST(ShortConvCuda, PackedSequencesMatchCpu) {
  REQUIRE_GPU();
  // Sequences of 5, 0, 1 and 61 rows packed in one [1, 67, C] row; some shorter than the taps.
  const std::vector<int32_t> cu{0, 5, 5, 6, 67};
  const Tensor cu_seqlens = Tensor::from_vector<int32_t>({5}, cu);
  for (int64_t C : {33, 36})
  for (DType dt : kTypes)
    for (int64_t W : {2, 4, 7}) {
      const int64_t N = 4, T = 67;
      const Tensor x = held({1, T, C}, 40, dt), w = held({C, W}, 41, DType::f32), dy = held({1, T, C}, 42, dt);
      const Tensor b = held({C}, 43, DType::f32), c0 = held({N, C, W - 1}, 44, DType::f32);
      const Tensor dfc = held({N, C, W - 1}, 45, DType::f32);
      const auto act = ConvActivation::silu;
      const std::string what = "packed C " + std::to_string(C) + " W " + std::to_string(W);
      for (const Tensor& cu_dev : {cu_seqlens, cu_seqlens.to(Device::cuda)}) {
        const ShortConvResult r =
            short_conv_forward(gpu(x, dt), w.to(Device::cuda), b.to(Device::cuda), act, cu_dev, c0.to(Device::cuda), true);
        const ShortConvResult ref = short_conv_forward(x, w, b, act, cu_seqlens, c0, true);
        EXPECT_CLOSE(r.y, ref.y, dt, what + " y");
        EXPECT_LE(rel_rms_error(r.final_cache, ref.final_cache), 1e-6) << what;
        const ShortConvGrads g = short_conv_backward(gpu(dy, dt), gpu(x, dt), w.to(Device::cuda), b.to(Device::cuda), act,
                                                     cu_dev, c0.to(Device::cuda), dfc.to(Device::cuda));
        const ShortConvGrads gr = short_conv_backward(dy, x, w, b, act, cu_seqlens, c0, dfc);
        EXPECT_CLOSE(g.dx, gr.dx, dt, what + " dx");
        EXPECT_LE(rel_rms_error(g.dweight, gr.dweight), 2 * budget(dt)) << what << " dweight";
        EXPECT_LE(rel_rms_error(g.dbias, gr.dbias), 2 * budget(dt)) << what << " dbias";
        EXPECT_LE(rel_rms_error(g.d_initial_cache, gr.d_initial_cache), 2 * budget(dt)) << what << " d_initial_cache";
      }
    }
  const Tensor x = Tensor::zeros({1, 6, 4}, DType::bf16, Device::cuda), w = Tensor::zeros({4, 3}, DType::f32, Device::cuda);
  EXPECT_THROW(short_conv_forward(x, w, {}, ConvActivation::none, Tensor::from_vector<int32_t>({3}, {0, 4, 5})),
               ValueError);  // cu_seqlens must end at the row count
  EXPECT_THROW(short_conv_forward(x, Tensor::zeros({4, 3}, DType::f64, Device::cuda), {}, ConvActivation::none),
               DTypeError);
  EXPECT_THROW(short_conv_forward(x, Tensor::zeros({4, 17}, DType::f32, Device::cuda), {}, ConvActivation::none),
               UnsupportedError);
}

}  // namespace
}  // namespace gdn2
