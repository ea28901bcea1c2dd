// CUDA GDN-2 kernels against the CPU backend: golden cases, swept shapes and modes, decode in place, determinism.
// Skipped (not failed) where no GPU is present; CI compiles them, the device runs them.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "cpu/gate_logits.h"
#include "cuda/require_gpu.h"
#include "gdn2/backend.h"
#include "gdn2/ops/dense.h"
#include "gdn2/ops/gdn2_golden.h"
#include "gdn2/ops/gdn2_random.h"

namespace gdn2 {
namespace {

constexpr double kBudgetF32 = 1e-4;   // SPEC §6: fp32 GPU paths
constexpr double kBudgetBf16 = 8e-3;  // bf16 outputs: their rounding (2^-9 relative) dominates

Gdn2Inputs to_cuda(const Gdn2Inputs& in) { return gdn2_inputs_to(in, Device::cuda); }

// fla's forward outputs, and for the chunk op its gradients (where the case has d_o), within the fp32 budget.
TEST(Gdn2Cuda, GoldenForward) {
  REQUIRE_GPU();
  for (const Gdn2GoldenCase& c : gdn2_golden_read(GDN2_GOLDEN_OPS)) {
    for (Gdn2CheckOp op : {Gdn2CheckOp::chunk, Gdn2CheckOp::recurrent}) {
      const Gdn2CheckResult r = gdn2_golden_check(c, op, Backend::cuda, DType::f32, 64, kBudgetF32);
      EXPECT_TRUE(r.pass) << c.name;
      const size_t fields = op == Gdn2CheckOp::chunk && c.d_o.defined() ? 3u : 2u;  // o, ht (and gradients)
      EXPECT_GE(r.errors.size(), fields) << c.name;
      for (const auto& [field, err] : r.errors) EXPECT_LE(err, kBudgetF32) << c.name << " " << field;
    }
  }
}

std::vector<Gdn2RandomSpec> cuda_cases() {
  std::vector<Gdn2RandomSpec> cs;
  for (int64_t T : {1, 31, 32, 33, 100, 257}) {
    Gdn2RandomSpec s;
    s.T = T, s.K = 64, s.V = 64, s.seed = 500 + T;
    cs.push_back(s);
  }
  Gdn2RandomSpec big;
  big.B = 2, big.T = 300, big.H = 2, big.HV = 4, big.K = 128, big.V = 128, big.seed = 7;
  cs.push_back(big);
  Gdn2RandomSpec odd;
  odd.T = 77, odd.H = 1, odd.HV = 3, odd.K = 48, odd.V = 72, odd.seed = 8;  // V not a multiple of 32 or 64
  cs.push_back(odd);
  Gdn2RandomSpec varlen;
  varlen.seqlens = {70, 0, 1, 129, 33}, varlen.H = 1, varlen.HV = 2, varlen.seed = 9;
  cs.push_back(varlen);
  for (const char* mode : {"kda", "gdn", "ssd"}) {
    Gdn2RandomSpec m;
    m.T = 90, m.HV = 4, m.seed = 10;
    if (std::string(mode) != "ssd") m.b_form = m.w_form = "head", m.b_heads = 4;
    if (std::string(mode) == "gdn") m.g_form = "head", m.g_heads = 4;
    if (std::string(mode) == "ssd") m.b_form = m.w_form = "none";
    cs.push_back(m);
  }
  for (GateRange r : {GateRange::near_zero, GateRange::very_negative}) {
    Gdn2RandomSpec e;
    e.T = 100, e.g_range = r, e.seed = 11;
    cs.push_back(e);
  }
  Gdn2RandomSpec neg;
  neg.T = 97, neg.b_max = 2.0, neg.seed = 12;
  cs.push_back(neg);
  Gdn2RandomSpec unit;
  unit.T = 50, unit.l2norm = false, unit.h0 = false, unit.scale = 0.3, unit.seed = 13;
  cs.push_back(unit);
  // bf16 inputs take the tensor-core chunk path: every case again in bf16, plus long and K = 128 ones.
  const size_t n_f32 = cs.size();
  for (size_t i = 0; i < n_f32; ++i) {
    Gdn2RandomSpec b = cs[i];
    b.dtype = DType::bf16, b.seed += 1000;
    cs.push_back(b);
  }
  // fp16 inputs take the tensor-core path too (converted to bf16 operands): a GVA case with odd T and a packed one.
  for (size_t i : {size_t{6}, size_t{8}}) {
    Gdn2RandomSpec h = cs[i];
    h.dtype = DType::f16, h.seed += 2000;
    cs.push_back(h);
  }
  Gdn2RandomSpec long_bf16;
  long_bf16.B = 1, long_bf16.T = 1000, long_bf16.H = 2, long_bf16.HV = 2, long_bf16.K = 128, long_bf16.V = 128;
  long_bf16.dtype = DType::bf16, long_bf16.seed = 15;
  cs.push_back(long_bf16);
  // An odd V (37) and K = 40 on the tensor-core path: rows of d_o, the states and their gradients are not 16-byte
  // aligned, so the backward's tiles take their element-by-element loads and stores (dh among them, in bf16).
  Gdn2RandomSpec odd_bf16;
  odd_bf16.T = 70, odd_bf16.H = 1, odd_bf16.HV = 2, odd_bf16.K = 40, odd_bf16.V = 37;
  odd_bf16.dtype = DType::bf16, odd_bf16.seed = 16;
  cs.push_back(odd_bf16);
  return cs;
}

class Gdn2CudaSwept : public ::testing::TestWithParam<Gdn2RandomSpec> {};

TEST_P(Gdn2CudaSwept, ForwardMatchesCpu) {
  REQUIRE_GPU();
  const Gdn2RandomSpec& s = GetParam();
  const Gdn2Inputs in = gdn2_random_inputs(s);
  Gdn2Options opt = gdn2_random_options(s);
  opt.compute = DType::f64;
  const Gdn2Outputs ref = gdn2_chunk_fwd(in, opt);  // fp64 CPU, checked against the oracle elsewhere
  opt.compute = DType::f32;
  const double budget = s.dtype != DType::f32 ? kBudgetBf16 : kBudgetF32;
  const Gdn2Inputs d = to_cuda(in);
  const Gdn2Outputs chunk = gdn2_chunk_fwd(d, opt);
  const Gdn2Outputs rec = gdn2_recurrent(d, opt);
  EXPECT_EQ(chunk.o.device(), Device::cuda);
  std::printf("[ errors   ] %s: chunk o %.2e ht %.2e, recurrent o %.2e ht %.2e (budget %.0e)\n", s.name().c_str(),
              rel_rms_error(chunk.o, ref.o), rel_rms_error(chunk.ht, ref.ht), rel_rms_error(rec.o, ref.o),
              rel_rms_error(rec.ht, ref.ht), budget);
  EXPECT_LE(rel_rms_error(chunk.o, ref.o), budget) << "chunk o";
  EXPECT_LE(rel_rms_error(chunk.ht, ref.ht), budget) << "chunk ht";
  EXPECT_LE(rel_rms_error(rec.o, ref.o), budget) << "recurrent o";
  EXPECT_LE(rel_rms_error(rec.ht, ref.ht), kBudgetF32) << "recurrent ht";
  // Bitwise deterministic.
  const Tensor again = gdn2_chunk_fwd(d, opt).o.cpu();
  const Tensor first = chunk.o.cpu();
  EXPECT_EQ(std::memcmp(again.raw(), first.raw(), first.nbytes()), 0);
}

// The CUDA backward against the fp64 CPU backward on the same inputs: every gradient, and bitwise deterministic.
// fp32 inputs: exact recompute, fp32 budget; bf16/fp16 inputs: chunk states from the tensor-core forward (bf16
// products), the bf16 budget, with an F32 d_o and again with d_o in the inputs' dtype (as training passes it; the
// reference takes the same rounded values).
TEST_P(Gdn2CudaSwept, BackwardMatchesCpu) {
  REQUIRE_GPU();
  const Gdn2RandomSpec& s = GetParam();
  const Gdn2Inputs in = gdn2_random_inputs(s);
  const Gdn2Inputs d = to_cuda(in);
  const auto [d_o_f32, dht] = gdn2_random_cotangents(s, 3);
  const Tensor ddht = dht.defined() ? dht.to(Device::cuda) : Tensor();
  std::vector<DType> d_o_types{DType::f32};
  if (s.dtype != DType::f32) d_o_types.push_back(s.dtype);
  for (DType dt : d_o_types) {
    const Tensor d_o = d_o_f32.to(dt).to(DType::f32);  // the values the GPU sees
    Gdn2Options opt = gdn2_random_options(s);
    opt.compute = DType::f64;
    const Gdn2Grads ref = gdn2_chunk_bwd(in, opt, d_o, dht);
    opt.compute = DType::f32;
    const Tensor dd_o = d_o_f32.to(dt).to(Device::cuda);
    const Gdn2Grads g = gdn2_chunk_bwd(d, opt, dd_o, ddht);
    std::string line;
    for (auto [name, x, y] : {std::tuple{"dq", &g.dq, &ref.dq}, {"dk", &g.dk, &ref.dk}, {"dv", &g.dv, &ref.dv},
                              {"dg", &g.dg, &ref.dg}, {"db", &g.db, &ref.db}, {"dw", &g.dw, &ref.dw},
                              {"dh0", &g.dh0, &ref.dh0}}) {
      ASSERT_EQ(x->defined(), y->defined()) << name;
      if (!x->defined()) continue;
      ASSERT_EQ(x->shape(), y->shape()) << name;
      const double e = rel_rms_error(*x, *y);
      char buf[48];
      std::snprintf(buf, sizeof buf, " %s %.2e", name, e);
      line += buf;
      EXPECT_LE(e, s.dtype != DType::f32 ? kBudgetBf16 : kBudgetF32) << name << ", d_o " << dtype_name(dt);
    }
    std::printf("[ errors   ] %s backward (d_o %s):%s\n", s.name().c_str(), std::string(dtype_name(dt)).c_str(),
                line.c_str());
    const Gdn2Grads again = gdn2_chunk_bwd(d, opt, dd_o, ddht);
    const Tensor a = again.dk.cpu(), b = g.dk.cpu();
    EXPECT_EQ(std::memcmp(a.raw(), b.raw(), a.nbytes()), 0) << "deterministic, d_o " << dtype_name(dt);
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, Gdn2CudaSwept, ::testing::ValuesIn(cuda_cases()),
                         [](const ::testing::TestParamInfo<Gdn2RandomSpec>& info) {
                           std::string n = info.param.name() + "_" + std::to_string(info.index);
                           for (char& ch : n)
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           return n;
                         });

// Token-by-token decode steps with the state updated in place (fp32 and bf16 state) against the fp64 oracle.
void check_decode_steps(const Gdn2RandomSpec& s) {
  const Gdn2Inputs in = gdn2_random_inputs(s);
  const Gdn2Options opt = gdn2_random_options(s);
  const Gdn2Outputs ref = gdn2_recurrent_ref(in, opt);
  for (DType state_dtype : {DType::f32, DType::bf16}) {
    Tensor state = in.h0.to(state_dtype).to(Device::cuda);
    std::vector<double> o_all(static_cast<size_t>(in.v.numel()));
    for (int64_t t = 0; t < s.T; ++t) {
      const std::vector<double> o = gdn2_recurrent_step(to_cuda(gdn2_inputs_token(in, t)), state, opt).to_f64_vector();
      const int64_t row = s.HV * s.V;
      for (int64_t b = 0; b < s.B; ++b)
        std::copy(o.begin() + b * row, o.begin() + (b + 1) * row, o_all.begin() + (b * s.T + t) * row);
    }
    const double budget = state_dtype == DType::f32 ? kBudgetF32 : 2e-2;  // bf16 state rounds every step
    EXPECT_LE(rel_rms_error(Tensor::from_vector(in.v.shape(), o_all), ref.o), budget)
        << s.name() << " " << dtype_name(state_dtype);
    EXPECT_LE(rel_rms_error(state.to(DType::f32), ref.ht), budget) << s.name() << " " << dtype_name(state_dtype);
  }
}

TEST(Gdn2Cuda, DecodeStepInPlaceFp32AndBf16State) {
  REQUIRE_GPU();
  Gdn2RandomSpec s;
  s.B = 5, s.T = 12, s.H = 2, s.HV = 4, s.K = 128, s.V = 128, s.seed = 21;
  check_decode_steps(s);
}

// Batches that take the wide decode blocks on an H100 (128 columns with 16-byte fp32 / 8-byte bf16 state accesses,
// then 64 columns), a ragged V (the last lanes' columns partly past V, rows not 16-byte aligned: element accesses)
// and a small K. 320 and 800 items of 128 columns are more than the resident blocks (two a SM): blocks take several
// in turn, the next one's state prefetched.
TEST(Gdn2Cuda, DecodeStepWideBlocks) {
  REQUIRE_GPU();
  Gdn2RandomSpec s;
  s.B = 40, s.T = 3, s.H = 4, s.HV = 8, s.K = 128, s.V = 128, s.seed = 24;  // 320 items of 128 columns
  check_decode_steps(s);
  s.B = 100;  // 800 items
  check_decode_steps(s);
  s.B = 40;
  s.K = 48, s.V = 98;
  check_decode_steps(s);
  s.B = 20, s.K = 128, s.V = 128;  // 160 blocks of 128 columns, 320 of 64
  check_decode_steps(s);
}

// Gdn2Options::gates_logits on the GPU (fp32 inputs and state): the decode step applies the sigmoid to b and w as it
// loads them (channel gates; head gates with w the same tensor as b), against the fp64 oracle on the CPU sigmoid of
// the same logits; the chunk forward (which the op hands the gates themselves) gives the same bits as with the sigmoid
// op applied first.
TEST(Gdn2Cuda, DecodeStepTakesGateLogits) {
  REQUIRE_GPU();
  for (const char* mode : {"gdn2", "gdn"}) {
    Gdn2RandomSpec s;
    s.B = 6, s.T = 3, s.H = 2, s.HV = 4, s.K = 128, s.V = 128, s.seed = 61;
    if (std::string(mode) == "gdn") s.H = 4, s.b_form = s.w_form = s.g_form = "head";  // w is b: HV heads
    const auto [logits, gates] = test::gate_logit_inputs(s, std::string(mode) == "gdn");
    const Gdn2Options opt = gdn2_random_options(s);
    Gdn2Options opt_logits = opt;
    opt_logits.gates_logits = true;
    const Gdn2Outputs ref = gdn2_recurrent_ref(gates, opt);
    Tensor state = logits.h0.to(Device::cuda);
    std::vector<double> o_all(static_cast<size_t>(logits.v.numel()));
    for (int64_t t = 0; t < s.T; ++t) {
      const std::vector<double> o =
          gdn2_recurrent_step(to_cuda(gdn2_inputs_token(logits, t)), state, opt_logits).to_f64_vector();
      const int64_t row = s.HV * s.V;
      for (int64_t n = 0; n < s.B; ++n)
        std::copy(o.begin() + n * row, o.begin() + (n + 1) * row, o_all.begin() + (n * s.T + t) * row);
    }
    EXPECT_LE(rel_rms_error(Tensor::from_vector(logits.v.shape(), o_all), ref.o), kBudgetF32) << mode;
    EXPECT_LE(rel_rms_error(state.to(DType::f32), ref.ht), kBudgetF32) << mode;

    Gdn2Inputs sig = to_cuda(logits);
    sig.b = sigmoid_forward(sig.b);
    sig.w = std::string(mode) == "gdn" ? sig.b : sigmoid_forward(sig.w);
    const Gdn2Outputs want = gdn2_chunk_fwd(sig, opt), got = gdn2_chunk_fwd(to_cuda(logits), opt_logits);
    EXPECT_EQ(got.o.cpu().to_f64_vector(), want.o.cpu().to_f64_vector()) << mode;
    EXPECT_EQ(got.ht.cpu().to_f64_vector(), want.ht.cpu().to_f64_vector()) << mode;
  }
}

// The in-op decay gate (A_log, dt_bias; g_log holds f) in the kernels: fp32 chunk and recurrent paths and the bf16
// tensor-core path against the fp64 CPU op on the same inputs.
TEST(Gdn2Cuda, InOpDecayGate) {
  REQUIRE_GPU();
  for (DType dt : {DType::f32, DType::bf16}) {
    Gdn2RandomSpec s;
    s.T = 130, s.H = 2, s.HV = 4, s.K = 64, s.V = 64, s.dtype = dt, s.seed = 51;
    Gdn2Inputs in = gdn2_random_inputs(s);
    std::vector<double> f = in.g_log.to_f64_vector(), a(2), bias(2 * 64);
    for (size_t i = 0; i < f.size(); ++i) f[i] = 2.0 * std::cos(0.37 * static_cast<double>(i));
    a[0] = -1.0, a[1] = 0.2;
    for (size_t i = 0; i < bias.size(); ++i) bias[i] = 0.3 * std::sin(static_cast<double>(i));
    in.g_log = Tensor::from_vector(in.g_log.shape(), f).to(dt);
    in.A_log = Tensor::from_vector({2}, a).to(DType::f32);
    in.dt_bias = Tensor::from_vector({2, 64}, bias).to(DType::f32);
    Gdn2Options opt = gdn2_random_options(s);
    opt.compute = DType::f64;
    const Gdn2Outputs ref = gdn2_chunk_fwd(in, opt);
    opt.compute = DType::f32;
    const double budget = dt == DType::bf16 ? kBudgetBf16 : kBudgetF32;
    const Gdn2Outputs chunk = gdn2_chunk_fwd(to_cuda(in), opt), rec = gdn2_recurrent(to_cuda(in), opt);
    std::printf("[ errors   ] in-op gate %s: chunk o %.2e ht %.2e, recurrent o %.2e\n", std::string(dtype_name(dt)).c_str(),
                rel_rms_error(chunk.o, ref.o), rel_rms_error(chunk.ht, ref.ht), rel_rms_error(rec.o, ref.o));
    EXPECT_LE(rel_rms_error(chunk.o, ref.o), budget);
    EXPECT_LE(rel_rms_error(chunk.ht, ref.ht), budget);
    EXPECT_LE(rel_rms_error(rec.o, ref.o), budget);
    // Backward through the gate: the gradients of f, A_log and dt_bias.
    const auto [d_o, dht] = gdn2_random_cotangents(s, 4);
    opt.compute = DType::f64;
    const Gdn2Grads gref = gdn2_chunk_bwd(in, opt, d_o, dht);
    opt.compute = DType::f32;
    const Gdn2Grads gc = gdn2_chunk_bwd(to_cuda(in), opt, d_o.to(Device::cuda), dht.to(Device::cuda));
    std::printf("[ errors   ] in-op gate backward %s: df %.2e dA_log %.2e ddt_bias %.2e\n",
                std::string(dtype_name(dt)).c_str(), rel_rms_error(gc.dg, gref.dg),
                rel_rms_error(gc.dA_log, gref.dA_log), rel_rms_error(gc.ddt_bias, gref.ddt_bias));
    EXPECT_LE(rel_rms_error(gc.dg, gref.dg), budget);
    EXPECT_LE(rel_rms_error(gc.dA_log, gref.dA_log), budget);
    EXPECT_LE(rel_rms_error(gc.ddt_bias, gref.ddt_bias), budget);
  }
}

// grads_like_inputs: the input gradients in the inputs' dtypes, each the F32 gradient rounded once (bitwise), whether
// the kernels write them so (bf16 with as many q/k heads as value heads) or they are summed over value heads first
// (GVA); f's gradient through the in-op gate likewise; dA_log, ddt_bias and dh0 unchanged.
TEST(Gdn2Cuda, GradsLikeInputs) {
  REQUIRE_GPU();
  for (int64_t H : {4, 2})
    for (DType dt : {DType::bf16, DType::f32}) {
      Gdn2RandomSpec s;
      s.T = 130, s.H = H, s.HV = 4, s.K = 64, s.V = 48, s.dtype = dt, s.seed = 61;
      Gdn2Inputs gated = to_cuda(gdn2_random_inputs(s));
      gated.A_log = Tensor::from_vector<float>({H}, std::vector<float>(static_cast<size_t>(H), 0.1f)).to(Device::cuda);
      const Gdn2Inputs& in = gated;
      Gdn2Options opt = gdn2_random_options(s);
      const auto [d_o, dht] = gdn2_random_cotangents(s, 5);
      const Tensor d_o_dev = d_o.to(Device::cuda), dht_dev = dht.to(Device::cuda);
      const Gdn2Grads plain = gdn2_chunk_bwd(in, opt, d_o_dev, dht_dev);
      opt.grads_like_inputs = true;
      const Gdn2Grads like = gdn2_chunk_bwd(in, opt, d_o_dev, dht_dev);
      const std::string what = "H " + std::to_string(H) + " " + std::string(dtype_name(dt));
      for (auto [got, want, input, name] :
           {std::tuple{&like.dq, &plain.dq, &in.q, "dq"}, {&like.dk, &plain.dk, &in.k, "dk"},
            {&like.dv, &plain.dv, &in.v, "dv"}, {&like.db, &plain.db, &in.b, "db"}, {&like.dw, &plain.dw, &in.w, "dw"},
            {&like.dg, &plain.dg, &in.g_log, "df"}, {&like.dA_log, &plain.dA_log, &plain.dA_log, "dA_log"},
            {&like.dh0, &plain.dh0, &plain.dh0, "dh0"}}) {
        ASSERT_TRUE(got->defined()) << name << " " << what;
        EXPECT_EQ(got->dtype(), input->dtype()) << name << " " << what;
        EXPECT_EQ(got->shape(), input->shape()) << name << " " << what;
        const Tensor a = got->cpu(), b = want->to(got->dtype()).cpu();
        EXPECT_EQ(std::memcmp(a.raw(), b.raw(), a.nbytes()), 0) << name << " " << what;
      }
    }
}

// A plan on caller-provided workspace launches without allocating and gives the direct call's output bitwise.
TEST(Gdn2Cuda, PlanOnCallerWorkspace) {
  REQUIRE_GPU();
  Gdn2RandomSpec s;
  s.seqlens = {70, 0, 1, 129}, s.H = 2, s.HV = 4, s.K = 128, s.V = 128, s.dtype = DType::bf16, s.seed = 41;
  const Gdn2Inputs d = to_cuda(gdn2_random_inputs(s));
  const Gdn2Options opt = gdn2_random_options(s);
  const int64_t bytes = Gdn2Plan::workspace_bytes(d, opt, Gdn2Kernel::chunk);
  EXPECT_GT(bytes, 4 * 64 * 4 * 128 * 2);  // at least the tiles of the 4 chunks x 4 heads
  Tensor small = Tensor::empty({bytes - 256}, DType::u8, Device::cuda);
  EXPECT_THROW(Gdn2Plan(d, opt, Gdn2Kernel::chunk, nullptr, &small), ShapeError);
  Tensor ws = Tensor::empty({bytes}, DType::u8, Device::cuda);
  Gdn2Plan plan(d, opt, Gdn2Kernel::chunk, nullptr, &ws);
  plan.run();
  plan.run();  // relaunching on the same workspace is idempotent
  plan.sync();
  const Tensor a = plan.outputs().o.cpu(), b = gdn2_chunk_fwd(d, opt).o.cpu();
  EXPECT_EQ(std::memcmp(a.raw(), b.raw(), a.nbytes()), 0);
  Gdn2RandomSpec dense = s;
  dense.seqlens.clear(), dense.B = 2, dense.T = 33;
  const Gdn2Inputs dd = to_cuda(gdn2_random_inputs(dense));
  EXPECT_EQ(Gdn2Plan::workspace_bytes(dd, opt, Gdn2Kernel::recurrent), 0);  // no offsets, no tiles
}

// Short runs in place (speculative verify) on fp32 and bf16 states, direct and planned, against the oracle.
TEST(Gdn2Cuda, MultiTokenStepInPlace) {
  REQUIRE_GPU();
  Gdn2RandomSpec s;
  s.B = 3, s.T = 70, s.H = 2, s.HV = 4, s.K = 128, s.V = 128, s.seed = 23;
  const Gdn2Inputs in = gdn2_random_inputs(s);
  const Gdn2Options opt = gdn2_random_options(s);
  const Gdn2Outputs ref = gdn2_recurrent_ref(in, opt);
  Gdn2Inputs first64 = gdn2_inputs_tokens(in, 0, 64);
  first64.h0 = in.h0;
  const Gdn2Outputs ref64 = gdn2_recurrent_ref(first64, opt);
  for (DType state_dtype : {DType::f32, DType::bf16}) {
    Tensor state = in.h0.to(state_dtype).to(Device::cuda);
    const Tensor o = gdn2_recurrent_step(to_cuda(gdn2_inputs_tokens(in, 0, 64)), state, opt);
    EXPECT_EQ(o.shape(), (Shape{s.B, 64, s.HV, s.V}));
    gdn2_recurrent_step(to_cuda(gdn2_inputs_tokens(in, 64, 6)), state, opt);
    const double budget = state_dtype == DType::f32 ? kBudgetF32 : 2e-2;
    EXPECT_LE(rel_rms_error(state.to(DType::f32), ref.ht), budget) << dtype_name(state_dtype);
    Tensor planned = in.h0.to(state_dtype).to(Device::cuda);
    Gdn2Plan plan(to_cuda(gdn2_inputs_tokens(in, 0, 64)), opt, Gdn2Kernel::recurrent, &planned);
    plan.run();
    plan.sync();
    EXPECT_LE(rel_rms_error(plan.outputs().o, ref64.o), budget) << "plan " << dtype_name(state_dtype);
    EXPECT_LE(rel_rms_error(planned.to(DType::f32), ref64.ht), budget) << "plan " << dtype_name(state_dtype);
  }
  Tensor state = in.h0.to(Device::cuda);
  EXPECT_THROW(gdn2_recurrent_step(to_cuda(in), state, opt), ShapeError);  // 70 tokens: more than a step takes
}

// Per-chunk states on both chunk paths (fp32 CUDA cores, bf16 tensor cores) against the fp64 CPU op, with output,
// final state, determinism and the planned call; sequences long enough take context parallelism (segments side by
// side, then a scan).
void check_chunk_states(Gdn2RandomSpec s) {
  for (DType dt : {DType::bf16, DType::f32}) {
    s.dtype = dt;
    const Gdn2Inputs in = gdn2_random_inputs(s);
    Gdn2Options opt = gdn2_random_options(s);
    opt.chunk_states = true;
    opt.compute = DType::f64;
    const Gdn2Outputs ref = gdn2_chunk_fwd(in, opt);
    opt.compute = DType::f32;
    const Gdn2Inputs d = to_cuda(in);
    const Gdn2Outputs out = gdn2_chunk_fwd(d, opt);
    const double budget = dt == DType::bf16 ? kBudgetBf16 : kBudgetF32;
    ASSERT_EQ(out.h.shape(), ref.h.shape());
    std::printf("[ errors   ] %s %s: o %.2e ht %.2e h %.2e\n", s.name().c_str(), std::string(dtype_name(dt)).c_str(),
                rel_rms_error(out.o, ref.o), rel_rms_error(out.ht, ref.ht), rel_rms_error(out.h, ref.h));
    EXPECT_LE(rel_rms_error(out.o, ref.o), budget) << s.name();
    EXPECT_LE(rel_rms_error(out.ht, ref.ht), budget) << s.name();
    EXPECT_LE(rel_rms_error(out.h, ref.h), budget) << s.name();
    const Tensor again = gdn2_chunk_fwd(d, opt).o.cpu(), first = out.o.cpu();
    EXPECT_EQ(std::memcmp(again.raw(), first.raw(), first.nbytes()), 0) << "deterministic";
    Gdn2Plan plan(d, opt, Gdn2Kernel::chunk);
    plan.run();
    plan.sync();
    const Tensor ph = plan.outputs().h.cpu(), dh = out.h.cpu();
    EXPECT_EQ(std::memcmp(ph.raw(), dh.raw(), dh.nbytes()), 0) << "plan";
  }
}

// Packed: an empty and a one-token sequence among longer ones; the 1100-token one is cut into segments. Small
// enough for compute-sanitizer (bench/device/check.sh).
TEST(Gdn2Cuda, ChunkStatesPacked) {
  REQUIRE_GPU();
  Gdn2RandomSpec packed;
  packed.seqlens = {70, 0, 1, 129, 1100}, packed.H = 1, packed.HV = 2, packed.K = 128, packed.V = 128, packed.seed = 71;
  check_chunk_states(packed);
  Gdn2RandomSpec s;
  s.dtype = DType::bf16;
  Gdn2Options opt = gdn2_random_options(s);
  opt.chunk_states = true;
  opt.chunk_size = 32;
  EXPECT_THROW(gdn2_chunk_fwd(to_cuda(gdn2_random_inputs(s)), opt), UnsupportedError);
}

// Long sequences with few (column block, head) blocks: context parallelism with many segments; K = 64 with GVA and
// V not a multiple of 64.
TEST(Gdn2Cuda, ChunkStatesLongSequences) {
  REQUIRE_GPU();
  Gdn2RandomSpec one_long;
  one_long.B = 1, one_long.T = 4096, one_long.H = 1, one_long.HV = 2, one_long.K = 128, one_long.V = 128;
  one_long.seed = 72;
  check_chunk_states(one_long);
  Gdn2RandomSpec gva = one_long;
  gva.T = 1500, gva.HV = 3, gva.K = 64, gva.V = 96, gva.seed = 73;
  check_chunk_states(gva);
}

TEST(Gdn2Cuda, MixedDevicesAreRefused) {
  REQUIRE_GPU();
  Gdn2RandomSpec s;
  Gdn2Inputs in = gdn2_random_inputs(s);
  Gdn2Inputs mixed = to_cuda(in);
  mixed.v = in.v;
  EXPECT_THROW(gdn2_chunk_fwd(mixed, {}), ShapeError);
  const auto [d_o, dht] = gdn2_random_cotangents(s, 1);
  EXPECT_THROW(gdn2_chunk_bwd(to_cuda(in), {}, d_o, Tensor()), ShapeError);  // d_o on the CPU
}

// Store instead of recompute: the backward on the forward's stored 64-token states (chunk_states) gives the
// recomputing backward's gradients (bf16 inputs: the same tensor-core states, bitwise; fp32 inputs: states every 32
// tokens by another route, within fp32 rounding), on packed sequences with an initial state. bf16 inputs also store
// the forward's workspace (the op's and a plan's), which the backward reads without changing it (twice, bitwise the
// same). States of another chunk size, a workspace without its states or cut short are refused.
TEST(Gdn2Cuda, BackwardOnStoredStates) {
  REQUIRE_GPU();
  for (DType dt : {DType::bf16, DType::f32}) {
    Gdn2RandomSpec s;
    s.H = 2, s.HV = 4, s.K = 64, s.V = 96, s.seqlens = {150, 1, 64, 97}, s.dtype = dt, s.seed = 31;
    const Gdn2Inputs d = to_cuda(gdn2_random_inputs(s));
    Gdn2Options opt = gdn2_random_options(s);
    opt.chunk_states = true;
    const auto [d_o, dht] = gdn2_random_cotangents(s, 32);
    const Tensor d_o_dev = d_o.to(Device::cuda), dht_dev = dht.to(Device::cuda);
    const Gdn2Outputs fwd = gdn2_chunk_fwd(d, opt);
    ASSERT_EQ(fwd.work.defined(), dt == DType::bf16);
    const Gdn2Grads recomputed = gdn2_chunk_bwd(d, opt, d_o_dev, dht_dev);
    std::vector<std::pair<Gdn2Grads, std::string>> runs;
    runs.emplace_back(gdn2_chunk_bwd(d, opt, d_o_dev, dht_dev, fwd.h), "states");
    if (dt == DType::bf16) {
      for (int twice = 0; twice < 2; ++twice)
        runs.emplace_back(gdn2_chunk_bwd(d, opt, d_o_dev, dht_dev, fwd.h, fwd.work), "states and workspace");
      Gdn2Plan plan(d, opt, Gdn2Kernel::chunk);
      plan.run();
      plan.sync();
      ASSERT_TRUE(plan.outputs().work.defined());
      runs.emplace_back(gdn2_chunk_bwd(d, opt, d_o_dev, dht_dev, plan.outputs().h, plan.outputs().work), "plan's");
      EXPECT_THROW(gdn2_chunk_bwd(d, opt, d_o_dev, dht_dev, Tensor(), fwd.work), ShapeError);
      EXPECT_THROW(gdn2_chunk_bwd(d, opt, d_o_dev, dht_dev, fwd.h, fwd.work.slice0(0, fwd.work.numel() - 256)),
                   ShapeError);
    }
    for (const auto& [stored, how] : runs) {
      for (auto [x, y, name] : {std::tuple{&stored.dq, &recomputed.dq, "dq"}, {&stored.dk, &recomputed.dk, "dk"},
                                {&stored.dv, &recomputed.dv, "dv"}, {&stored.dg, &recomputed.dg, "dg"},
                                {&stored.db, &recomputed.db, "db"}, {&stored.dw, &recomputed.dw, "dw"},
                                {&stored.dh0, &recomputed.dh0, "dh0"}}) {
        ASSERT_TRUE(x->defined() && y->defined()) << name << " " << how;
        if (dt == DType::bf16) {
          const Tensor a = x->cpu(), b = y->cpu();
          EXPECT_EQ(std::memcmp(a.raw(), b.raw(), a.nbytes()), 0) << name << " bf16, " << how;
        } else {
          EXPECT_LE(rel_rms_error(*x, *y), 1e-6) << name << " f32";
        }
      }
    }
    Gdn2Options other = opt;
    other.chunk_size = 32;
    const Tensor h32 = gdn2_chunk_fwd(gdn2_inputs_to(d, Device::cpu), other).h.to(Device::cuda);
    EXPECT_THROW(gdn2_chunk_bwd(d, other, d_o_dev, dht_dev, h32), UnsupportedError);
  }
}

// The device-memory counters that cuda-bench's forward+backward peak reads (src/cuda/device_memory.cu).
TEST(CudaMemory, HeldAndPeakCounters) {
  REQUIRE_GPU();
  const int64_t before = cuda_memory_held();
  cuda_memory_reset_peak();
  EXPECT_EQ(cuda_memory_held_peak(), before);
  {
    const Tensor a = Tensor::empty({1 << 20}, DType::f32, Device::cuda);
    EXPECT_EQ(cuda_memory_held() - before, int64_t{4} << 20);
    {
      const Tensor b = Tensor::empty({1 << 18}, DType::f32, Device::cuda);
      EXPECT_EQ(cuda_memory_held() - before, (int64_t{4} << 20) + (int64_t{1} << 20));
    }
    EXPECT_EQ(cuda_memory_held() - before, int64_t{4} << 20);
  }
  EXPECT_EQ(cuda_memory_held(), before);
  EXPECT_EQ(cuda_memory_held_peak() - before, (int64_t{4} << 20) + (int64_t{1} << 20));
}

}  // namespace
}  // namespace gdn2
