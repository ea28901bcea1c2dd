// The GDN-2 shape contract: every malformed call gets a typed error naming what is wrong.
#include <gtest/gtest.h>

#include "gdn2/ops/gdn2_random.h"

namespace gdn2 {
namespace {

Gdn2Inputs good() {
  Gdn2RandomSpec s;
  s.T = 10, s.H = 2, s.HV = 4, s.K = 8, s.V = 6;
  return gdn2_random_inputs(s);
}

template <class E>
void expect_error(const Gdn2Inputs& in, const Gdn2Options& opt, const std::string& needle) {
  try {
    gdn2_chunk_fwd(in, opt);
    FAIL() << "no error; expected one mentioning '" << needle << "'";
  } catch (const E& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(Gdn2Contract, GoodInputsRun) { EXPECT_NO_THROW(gdn2_chunk_fwd(good(), {})); }

TEST(Gdn2Contract, Shapes) {
  Gdn2Inputs in = good();
  in.k = Tensor::zeros({1, 10, 2, 7}, DType::f32);
  expect_error<ShapeError>(in, {}, "k F32[1, 10, 2, 7] must match q");
  in = good();
  in.v = Tensor::zeros({1, 10, 3, 6}, DType::f32);
  expect_error<ShapeError>(in, {}, "multiple of H=2");
  in = good();
  in.g_log = Tensor::zeros({1, 10, 3, 8}, DType::f32);
  expect_error<ShapeError>(in, {}, "g_log");
  in = good();
  in.b = Tensor::zeros({1, 10, 2, 6}, DType::f32);
  expect_error<ShapeError>(in, {}, "b F32[1, 10, 2, 6] last dim must be 8");
  in = good();
  in.w = Tensor::zeros({1, 10, 2, 6}, DType::f32);
  expect_error<ShapeError>(in, {}, "must have HV=4 heads");
  in = good();
  in.h0 = Tensor::zeros({2, 4, 8, 6}, DType::f32);
  expect_error<ShapeError>(in, {}, "h0 must be [N, HV, K, V]");
  in = good();
  in.q = Tensor::zeros({10, 2, 8}, DType::f32);
  expect_error<ShapeError>(in, {}, "q must be [B, T, H, K]");
}

TEST(Gdn2Contract, DtypesAndOptions) {
  Gdn2Inputs in = good();
  in.v = Tensor::zeros({1, 10, 4, 6}, DType::i32);
  expect_error<DTypeError>(in, {}, "v must be a float tensor");
  Gdn2Options opt;
  opt.chunk_size = 48;
  expect_error<ValueError>(good(), opt, "chunk_size");
  opt = {};
  opt.scale = -1;
  expect_error<ValueError>(good(), opt, "scale");
  opt = {};
  opt.compute = DType::bf16;
  expect_error<DTypeError>(good(), opt, "compute precision");
  in = good();
  in.g_log = Tensor();
  expect_error<ValueError>(in, {}, "g_log is required");
}

TEST(Gdn2Contract, CuSeqlens) {
  Gdn2Inputs in = good();
  in.cu_seqlens = Tensor::from_vector<int32_t>({3}, {0, 4, 9});
  expect_error<ValueError>(in, {}, "must end at the token count 10");
  in.cu_seqlens = Tensor::from_vector<int32_t>({3}, {1, 4, 10});
  expect_error<ValueError>(in, {}, "must start at 0");
  in.cu_seqlens = Tensor::from_vector<int64_t>({4}, {0, 6, 4, 10});
  expect_error<ValueError>(in, {}, "non-decreasing");
  in.cu_seqlens = Tensor::from_vector<float>({3}, {0, 4, 10});
  expect_error<DTypeError>(in, {}, "cu_seqlens must be I32 or I64");
  in.cu_seqlens = Tensor::from_vector<int32_t>({3}, {0, 4, 10});
  in.h0 = Tensor::zeros({1, 4, 8, 6}, DType::f32);
  expect_error<ShapeError>(in, {}, "h0 must be [N, HV, K, V] = [2, 4, 8, 6]");
  in.h0 = Tensor::zeros({2, 4, 8, 6}, DType::f32);
  EXPECT_NO_THROW(gdn2_chunk_fwd(in, {}));
}

TEST(Gdn2Contract, Cotangents) {
  const Gdn2Inputs in = good();
  EXPECT_THROW(gdn2_chunk_bwd(in, {}, Tensor::zeros({1, 10, 4, 5}, DType::f32), Tensor()), ShapeError);
  EXPECT_THROW(gdn2_chunk_bwd(in, {}, Tensor(), Tensor()), ValueError);
  EXPECT_THROW(gdn2_chunk_bwd(in, {}, Tensor::zeros({1, 10, 4, 6}, DType::f32), Tensor::zeros({1, 4, 8, 5}, DType::f32)),
               ShapeError);
}

TEST(Gdn2Contract, ModeNames) {
  Gdn2RandomSpec s;
  EXPECT_EQ(gdn2_gate_mode_name(gdn2_random_inputs(s)), "gdn2");
  s.b_form = s.w_form = "head";
  EXPECT_EQ(gdn2_gate_mode_name(gdn2_random_inputs(s)), "kda");
  s.g_form = "head";
  EXPECT_EQ(gdn2_gate_mode_name(gdn2_random_inputs(s)), "gdn");
  s.b_form = "none";
  EXPECT_EQ(gdn2_gate_mode_name(gdn2_random_inputs(s)), "ssd");
}

}  // namespace
}  // namespace gdn2

namespace gdn2 {
namespace {

// A CPU plan runs the same op as the direct call, needs no workspace, and refuses an in-place state on the chunk kernel.
TEST(Gdn2Plan, CpuPlanMatchesDirectCall) {
  Gdn2RandomSpec s;
  s.seqlens = {5, 0, 70}, s.HV = 4, s.seed = 31;
  const Gdn2Inputs in = gdn2_random_inputs(s);
  const Gdn2Options opt = gdn2_random_options(s);
  EXPECT_EQ(Gdn2Plan::workspace_bytes(in, opt, Gdn2Kernel::chunk), 0);
  Gdn2Plan plan(in, opt, Gdn2Kernel::chunk);
  plan.run();
  plan.sync();
  const Gdn2Outputs direct = gdn2_chunk_fwd(in, opt);
  EXPECT_EQ(rel_rms_error(plan.outputs().o, direct.o), 0.0);
  EXPECT_EQ(rel_rms_error(plan.outputs().ht, direct.ht), 0.0);
  Tensor state = Tensor::zeros({3, 4, s.K, s.V}, DType::f32);
  EXPECT_THROW(Gdn2Plan(in, opt, Gdn2Kernel::chunk, &state), ValueError);
}

}  // namespace
}  // namespace gdn2
