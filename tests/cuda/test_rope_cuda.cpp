// RoPE on the GPU against the CPU on the same values: partial rotary dims, a start offset and explicit GPU positions,
// forward and backward; bad calls refused.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "cuda/op_cuda_util.h"
#include "cuda/require_gpu.h"
#include "gdn2/ops/rope.h"

namespace gdn2 {
namespace {

using test::gpu;
using test::held;

const auto& kTypes = test::kGpuTypes;

TEST(RopeCuda, MatchesCpu) {
  REQUIRE_GPU();
  for (DType dt : kTypes) {
    const Tensor x = held({2, 37, 3, 40}, 11, dt);
    for (int64_t rd : {0, 10}) {
      const RopeOptions o{10000.0, rd};
      EXPECT_CLOSE(rope_forward(gpu(x, dt), 5, o), rope_forward(x, 5, o), dt, "rope");
      EXPECT_CLOSE(rope_backward(gpu(x, dt), 5, o), rope_backward(x, 5, o), dt, "rope backward");
      std::vector<int32_t> pos;
      for (int i = 0; i < 2 * 37; ++i) pos.push_back((i * 13) % 50);
      const Tensor p = Tensor::from_vector<int32_t>({2, 37}, pos);
      EXPECT_CLOSE(rope_forward(gpu(x, dt), p.to(Device::cuda), o), rope_forward(x, p, o), dt, "rope positions");
    }
  }
}

TEST(RopeCuda, PositionsStayOnTheirDevice) {
  REQUIRE_GPU();
  const Tensor x = Tensor::zeros({1, 3, 1, 8}, DType::bf16, Device::cuda);
  EXPECT_THROW(rope_forward(x, Tensor::zeros({1, 3}, DType::i32), RopeOptions{}), ShapeError);
  EXPECT_THROW(rope_forward(x, Tensor::zeros({1, 4}, DType::i32, Device::cuda), RopeOptions{}), ShapeError);
  EXPECT_THROW(rope_forward(x.to(DType::f64), 0, RopeOptions{}), DTypeError);
}

}  // namespace
}  // namespace gdn2
