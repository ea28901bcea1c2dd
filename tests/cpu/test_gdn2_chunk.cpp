// Chunk and recurrent GDN-2 (fp32 and fp64) against the fp64 token-by-token oracle on swept shapes and gate modes.
#include <gtest/gtest.h>

#include <tuple>

#include "gdn2/ops/gdn2_random.h"

namespace gdn2 {
namespace {

constexpr double kBudgetF32 = 1e-5;   // SPEC §6: fp32 CPU paths
constexpr double kBudgetF64 = 1e-11;  // the same algebra in fp64

std::vector<Gdn2RandomSpec> swept_cases() {
  std::vector<Gdn2RandomSpec> cases;
  for (int64_t T : {1, 63, 64, 65, 203}) {
    Gdn2RandomSpec c;
    c.T = T;
    c.seed = 100 + T;
    cases.push_back(c);
  }
  Gdn2RandomSpec gva;  // GVA: 4 value heads on 2 q/k heads, V != K
  gva.T = 150, gva.H = 2, gva.HV = 4, gva.K = 16, gva.V = 24, gva.B = 2;
  cases.push_back(gva);
  Gdn2RandomSpec gva_gates = gva;  // gates per value head
  gva_gates.g_heads = 4, gva_gates.b_heads = 4, gva_gates.seed = 7;
  cases.push_back(gva_gates);
  Gdn2RandomSpec varlen;  // ragged packed batch with an empty and a one-token sequence
  varlen.seqlens = {70, 0, 1, 129, 33};
  varlen.H = 1, varlen.HV = 3, varlen.seed = 3;
  cases.push_back(varlen);
  Gdn2RandomSpec kda;  // KDA: scalar β for b and w
  kda.T = 130, kda.b_form = "head", kda.w_form = "head", kda.seed = 4;
  cases.push_back(kda);
  Gdn2RandomSpec gdn = kda;  // GDN: also scalar decay
  gdn.g_form = "head", gdn.seed = 5;
  cases.push_back(gdn);
  Gdn2RandomSpec gdn_gva = gdn;  // Qwen3.5-like: scalar gates per value head
  gdn_gva.HV = 4, gdn_gva.g_heads = 4, gdn_gva.b_heads = 4, gdn_gva.seed = 6;
  cases.push_back(gdn_gva);
  Gdn2RandomSpec ssd;  // b = 0, w = 1
  ssd.T = 100, ssd.b_form = "none", ssd.w_form = "none", ssd.seed = 8;
  cases.push_back(ssd);
  for (GateRange r : {GateRange::near_zero, GateRange::very_negative}) {
    Gdn2RandomSpec e;
    e.T = 150, e.g_range = r, e.seed = 9 + static_cast<int>(r);
    cases.push_back(e);
  }
  for (double b : {0.0, 1.0, 2.0}) {
    Gdn2RandomSpec e;
    e.T = 140, e.b_fixed = b, e.b_max = b > 1 ? 2.0 : 1.0, e.seed = 20;
    cases.push_back(e);
  }
  Gdn2RandomSpec negeig;
  negeig.T = 97, negeig.b_max = 2.0, negeig.seed = 21;
  cases.push_back(negeig);
  Gdn2RandomSpec no_norm;  // unit keys given, no in-op normalisation, no h0
  no_norm.T = 77, no_norm.l2norm = false, no_norm.h0 = false, no_norm.seed = 22;
  cases.push_back(no_norm);
  Gdn2RandomSpec bf16 = gva;  // bf16 inputs, fp32 compute
  bf16.dtype = DType::bf16, bf16.seed = 23;
  cases.push_back(bf16);
  Gdn2RandomSpec scaled = gva;  // custom scale
  scaled.scale = 0.37, scaled.seed = 25;
  cases.push_back(scaled);
  Gdn2RandomSpec head128;
  head128.T = 70, head128.H = 1, head128.HV = 1, head128.K = 128, head128.V = 128, head128.seed = 24;
  cases.push_back(head128);
  return cases;
}

}  // namespace

// Readable test parameters in gtest output.
void PrintTo(const Gdn2RandomSpec& s, std::ostream* os) { *os << s.name(); }

namespace {

class Gdn2Swept : public ::testing::TestWithParam<Gdn2RandomSpec> {};

void expect_close(const Tensor& x, const Tensor& ref, double budget, const std::string& what) {
  const double e = rel_rms_error(x, ref);
  EXPECT_LE(e, budget) << what << ": relative RMS error " << e << " above budget " << budget;
}

TEST_P(Gdn2Swept, ForwardMatchesOracle) {
  const Gdn2RandomSpec& c = GetParam();
  const Gdn2Inputs in = gdn2_random_inputs(c);
  Gdn2Options opt = gdn2_random_options(c);
  const Gdn2Outputs ref = gdn2_recurrent_ref(in, opt);
  const Gdn2Outputs rec = gdn2_recurrent(in, opt);
  expect_close(rec.o, ref.o, kBudgetF32, "recurrent o");
  expect_close(rec.ht, ref.ht, kBudgetF32, "recurrent ht");
  for (int chunk : {16, 32, 64}) {
    opt.chunk_size = chunk;
    opt.compute = DType::f32;
    const Gdn2Outputs f32 = gdn2_chunk_fwd(in, opt);
    expect_close(f32.o, ref.o, kBudgetF32, "chunk" + std::to_string(chunk) + " o");
    expect_close(f32.ht, ref.ht, kBudgetF32, "chunk" + std::to_string(chunk) + " ht");
    opt.compute = DType::f64;
    const Gdn2Outputs f64 = gdn2_chunk_fwd(in, opt);
    expect_close(f64.o, ref.o, kBudgetF64, "chunk" + std::to_string(chunk) + " fp64 o");
    expect_close(f64.ht, ref.ht, kBudgetF64, "chunk" + std::to_string(chunk) + " fp64 ht");
  }
}

TEST_P(Gdn2Swept, BackwardMatchesOracle) {
  const Gdn2RandomSpec& c = GetParam();
  const Gdn2Inputs in = gdn2_random_inputs(c);
  Gdn2Options opt = gdn2_random_options(c);
  const auto [d_o, dht] = gdn2_random_cotangents(c, c.seed + 1000);
  const Gdn2Grads ref = gdn2_recurrent_ref_bwd(in, opt, d_o, dht);
  for (DType compute : {DType::f32, DType::f64}) {
    opt.compute = compute;
    const double budget = compute == DType::f32 ? kBudgetF32 : kBudgetF64;
    const Gdn2Grads g = gdn2_chunk_bwd(in, opt, d_o, dht);
    const std::string tag = compute == DType::f32 ? "f32 " : "f64 ";
    expect_close(g.dq, ref.dq, budget, tag + "dq");
    expect_close(g.dk, ref.dk, budget, tag + "dk");
    expect_close(g.dv, ref.dv, budget, tag + "dv");
    expect_close(g.dg, ref.dg, budget, tag + "dg");
    ASSERT_EQ(g.db.defined(), in.b.defined());
    ASSERT_EQ(g.dw.defined(), in.w.defined());
    ASSERT_EQ(g.dh0.defined(), in.h0.defined());
    if (in.b.defined()) {
      EXPECT_EQ(g.db.shape(), in.b.shape());
      expect_close(g.db, ref.db, budget, tag + "db");
    }
    if (in.w.defined()) {
      EXPECT_EQ(g.dw.shape(), in.w.shape());
      expect_close(g.dw, ref.dw, budget, tag + "dw");
    }
    if (in.h0.defined()) expect_close(g.dh0, ref.dh0, budget, tag + "dh0");
    EXPECT_EQ(g.dq.shape(), in.q.shape());
    EXPECT_EQ(g.dg.shape(), in.g_log.shape());
  }
}

// grads_like_inputs on the CPU: the same gradients, each in its input's dtype (bf16 inputs, in-op gate: f's gradient
// too); dA_log stays in the compute precision.
TEST(Gdn2Chunk, GradsLikeInputs) {
  Gdn2RandomSpec s;
  s.T = 70, s.H = 2, s.HV = 4, s.K = 16, s.V = 24, s.dtype = DType::bf16, s.seed = 71;
  Gdn2Inputs in = gdn2_random_inputs(s);
  in.A_log = Tensor::from_vector<float>({2}, {0.1f, -0.3f});
  Gdn2Options opt = gdn2_random_options(s);
  const auto [d_o, dht] = gdn2_random_cotangents(s, 7);
  const Gdn2Grads plain = gdn2_chunk_bwd(in, opt, d_o, dht);
  opt.grads_like_inputs = true;
  const Gdn2Grads like = gdn2_chunk_bwd(in, opt, d_o, dht);
  for (auto [got, want, input] : {std::tuple{&like.dq, &plain.dq, &in.q}, {&like.dk, &plain.dk, &in.k},
                                  {&like.dv, &plain.dv, &in.v}, {&like.db, &plain.db, &in.b},
                                  {&like.dw, &plain.dw, &in.w}, {&like.dg, &plain.dg, &in.g_log}}) {
    EXPECT_EQ(got->dtype(), DType::bf16);
    EXPECT_EQ(got->shape(), input->shape());
    EXPECT_EQ(got->to_f64_vector(), want->to(DType::bf16).to_f64_vector());
  }
  EXPECT_EQ(like.dA_log.dtype(), plain.dA_log.dtype());
  EXPECT_EQ(like.dA_log.to_f64_vector(), plain.dA_log.to_f64_vector());
}

INSTANTIATE_TEST_SUITE_P(Cases, Gdn2Swept, ::testing::ValuesIn(swept_cases()),
                         [](const ::testing::TestParamInfo<Gdn2RandomSpec>& info) {
                           std::string s = info.param.name() + "_" + std::to_string(info.index);
                           for (char& ch : s)
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           return s;
                         });

}  // namespace
}  // namespace gdn2
