// The CUDA attention op against the CPU op on the same values (inputs rounded to the GPU dtype, the CPU in F32):
// forward o and lse, backward dq, dk, dv, on F32, BF16 and F16 over odd lengths, chunked prefill and decode (Tq < Tk),
// GQA groups of 1, 2 and 4, windows, head dims 64 and 128 (tensor-core kernels), 256 (tensor-core forward) and odd
// ones or misaligned tensors (general kernels), empty batches and queries; bitwise reproducible backward; bad calls
// refused with typed errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "cpu/op_test_util.h"
#include "cuda/attention_cudnn.h"
#include "cuda/require_gpu.h"
#include "gdn2/ops/attention.h"

namespace gdn2 {
namespace {

using test::random_tensor;

// Budgets (SPEC §6): fp32 arithmetic either way; the BF16/F16 kernels round P and dS to the dtype for their products
// and every output once (bf16 2^-9, f16 2^-12 relative), which lands well inside these.
double budget(DType dt) { return dt == DType::f32 ? 1e-5 : dt == DType::bf16 ? 8e-3 : 2e-3; }
constexpr double kLseBudget = 1e-5;  // lse is fp32 from fp32 scores on every path

const DType kTypes[] = {DType::f32, DType::bf16, DType::f16};

// cuDNN's fused attention on or off for a scope (the process starts with it on where the build has it).
struct CudnnAttention {
  explicit CudnnAttention(bool on) : was(cuda::cudnn_attention_on()) { cuda::cudnn_attention_set(on); }
  ~CudnnAttention() { cuda::cudnn_attention_set(was); }
  CudnnAttention(const CudnnAttention&) = delete;
  CudnnAttention& operator=(const CudnnAttention&) = delete;
  bool was;
};

// Values representable in dt, as F32 on the CPU (the reference's input).
Tensor held(const Shape& s, uint64_t seed, DType dt, double lo = -1, double hi = 1) {
  return random_tensor(s, seed, lo, hi).to(dt).to(DType::f32);
}
Tensor gpu(const Tensor& t, DType dt) { return t.to(dt).to(Device::cuda); }
// t's values on the GPU in dt, starting 2 bytes past a 16-byte boundary (the general path's business).
Tensor gpu_misaligned(const Tensor& t, DType dt) {
  const Tensor flat = Tensor::zeros({t.numel() + 1}, dt, Device::cuda).slice0(1, t.numel() + 1);
  Tensor view = flat.reshape(t.shape());
  copy_rows(view, 0, 0, gpu(t, dt), 0, 0, static_cast<size_t>(t.numel()) * dtype_size(dt), 1);
  return view;
}

struct AttnCase {
  int64_t B, Tq, Tk, Hq, Hkv, D, W;
  double scale = 0;     // 0: 1/sqrt(D)
  bool misaligned = false;
  std::string name() const {
    return "B" + std::to_string(B) + " Tq" + std::to_string(Tq) + " Tk" + std::to_string(Tk) + " Hq" +
           std::to_string(Hq) + " Hkv" + std::to_string(Hkv) + " D" + std::to_string(D) + " W" + std::to_string(W) +
           (scale != 0 ? " scale" + std::to_string(scale) : "") + (misaligned ? " misaligned" : "");
  }
};

struct Inputs {
  Tensor q, k, v, d_o;
};

Inputs make_inputs(const AttnCase& c, DType dt, uint64_t seed) {
  return {held({c.B, c.Tq, c.Hq, c.D}, seed, dt), held({c.B, c.Tk, c.Hkv, c.D}, seed + 1, dt),
          held({c.B, c.Tk, c.Hkv, c.D}, seed + 2, dt), held({c.B, c.Tq, c.Hq, c.D}, seed + 3, dt)};
}

// repeated_shape: cuDNN's fused attention takes what it can wherever it is on.
AttentionOptions options_of(const AttnCase& c) {
  AttentionOptions o;
  o.scale = c.scale;
  o.window = c.W;
  o.repeated_shape = true;
  return o;
}

// Forward and backward of one case against the CPU. The reference backward takes the GPU's o (rounded to dt) and
// lse, so that it measures the backward kernels alone.
void check_case(const AttnCase& c, DType dt, uint64_t seed) {
  const std::string what = c.name() + " " + std::string(dtype_name(dt));
  SCOPED_TRACE(what);
  const Inputs in = make_inputs(c, dt, seed);
  const AttentionOptions opt = options_of(c);
  auto up = [&](const Tensor& t) { return c.misaligned ? gpu_misaligned(t, dt) : gpu(t, dt); };
  const Tensor q = up(in.q), k = up(in.k), v = up(in.v), d_o = up(in.d_o);

  const AttentionResult r = attention_forward(q, k, v, opt);
  ASSERT_EQ(r.o.dtype(), dt);
  ASSERT_EQ(r.o.device(), Device::cuda);
  ASSERT_EQ(r.o.shape(), q.shape());
  ASSERT_EQ(r.lse.dtype(), DType::f32);
  ASSERT_EQ(r.lse.shape(), (Shape{c.B, c.Hq, c.Tq}));
  const AttentionResult ref = attention_forward(in.q, in.k, in.v, opt);
  EXPECT_LE(rel_rms_error(r.o, ref.o), budget(dt)) << "o";
  EXPECT_LE(rel_rms_error(r.lse, ref.lse), kLseBudget) << "lse";

  const AttentionGrads g = attention_backward(d_o, q, k, v, r.o, r.lse, opt);
  ASSERT_EQ(g.dq.dtype(), dt);
  ASSERT_EQ(g.dk.dtype(), dt);
  ASSERT_EQ(g.dv.dtype(), dt);
  ASSERT_EQ(g.dq.shape(), q.shape());
  ASSERT_EQ(g.dk.shape(), k.shape());
  ASSERT_EQ(g.dv.shape(), v.shape());
  const AttentionGrads gr =
      attention_backward(in.d_o, in.q, in.k, in.v, r.o.cpu().to(DType::f32), r.lse.cpu(), opt);
  EXPECT_LE(rel_rms_error(g.dq, gr.dq), budget(dt)) << "dq";
  EXPECT_LE(rel_rms_error(g.dk, gr.dk), budget(dt)) << "dk";
  EXPECT_LE(rel_rms_error(g.dv, gr.dv), budget(dt)) << "dv";

  // Keys no query sees (the window has passed them) get exact zeros.
  const int64_t unseen = c.W > 0 && c.Tq > 0 ? std::max<int64_t>(0, c.Tk - c.Tq - c.W + 1) : (c.Tq == 0 ? c.Tk : 0);
  if (unseen > 0 && c.B > 0) {
    const std::vector<double> dk = g.dk.to_f64_vector(), dv = g.dv.to_f64_vector();
    const int64_t row = c.Hkv * c.D;
    for (int64_t j = 0; j < unseen; ++j)
      for (int64_t e = 0; e < row; ++e) {
        ASSERT_EQ(dk[static_cast<size_t>(j * row + e)], 0.0) << "dk of unseen key " << j;
        ASSERT_EQ(dv[static_cast<size_t>(j * row + e)], 0.0) << "dv of unseen key " << j;
      }
  }
}

TEST(AttentionCuda, MatchesCpu) {
  REQUIRE_GPU();
  const CudnnAttention own_kernels(false);
  const AttnCase cases[] = {
      // Tensor-core kernels (BF16/F16 at D = 64, 128): odd lengths, several blocks, GQA 1, 2, 4, windows.
      {2, 37, 37, 4, 2, 64, 0},
      {1, 333, 333, 4, 1, 128, 0},
      {1, 200, 200, 2, 2, 64, 17},
      {1, 300, 300, 4, 2, 128, 100},
      {1, 130, 130, 2, 1, 64, 0, 0.5},  // a larger scale: peaked rows
      // Chunked prefill and decode against a cache (Tq < Tk), with and without a window.
      {1, 37, 200, 4, 2, 128, 0},
      {1, 37, 200, 2, 1, 128, 17},
      {2, 1, 333, 4, 1, 128, 0},
      {1, 1, 200, 2, 1, 64, 17},
      {2, 65, 129, 2, 1, 64, 64},
      // D = 256: tensor-core forward, general backward.
      {1, 150, 150, 2, 1, 256, 0},
      // General kernels: odd head dims, misaligned tensors.
      {1, 37, 100, 4, 2, 40, 0},
      {2, 33, 33, 2, 1, 40, 5},
      {1, 17, 50, 2, 1, 1, 0},
      {1, 70, 90, 2, 1, 64, 0, 0, true},
      // Empty batch, no queries (dk, dv zero).
      {0, 5, 5, 2, 1, 64, 0},
      {2, 0, 7, 2, 1, 64, 0},
  };
  uint64_t seed = 1000;
  for (const AttnCase& c : cases)
    for (DType dt : kTypes) {
      check_case(c, dt, seed);
      seed += 10;
    }
}

// cuDNN's fused attention: the cases it takes, against the CPU as above, and it must have taken them.
TEST(AttentionCuda, CudnnPathMatchesCpu) {
  REQUIRE_GPU();
  if (!cuda::cudnn_attention_built()) GTEST_SKIP() << "built without cuDNN";
  const CudnnAttention cudnn(true);
  const AttnCase cases[] = {{2, 37, 37, 4, 2, 64, 0},
                            {1, 333, 333, 4, 1, 128, 0},
                            {1, 130, 130, 2, 1, 64, 0, 0.5},
                            {2, 200, 200, 16, 4, 128, 0},
                            {1, 77, 77, 3, 3, 40, 0}};
  uint64_t seed = 5000;
  for (const AttnCase& c : cases)
    for (DType dt : {DType::bf16, DType::f16}) {
      check_case(c, dt, seed);
      const Inputs in = make_inputs(c, dt, seed);
      const Tensor q = gpu(in.q, dt), k = gpu(in.k, dt), v = gpu(in.v, dt);
      const double scale = c.scale != 0 ? c.scale : 1.0 / std::sqrt(static_cast<double>(c.D));
      const cuda::AttnParams a = cuda::attn_params(q, k, v, scale, 0, "test");
      Tensor o = Tensor::empty(q.shape(), dt, Device::cuda);
      Tensor lse = Tensor::empty({c.B, c.Hq, c.Tq}, DType::f32, Device::cuda);
      EXPECT_TRUE(cuda::cudnn_attention_forward(a, o.raw_mut(), static_cast<float*>(lse.raw_mut())))
          << c.name() << " " << dtype_name(dt) << ": cuDNN did not take it";
      seed += 10;
    }
}

// A one-off shape (repeated_shape false: a prompt's prefill) stays on gdn2's own kernels with cuDNN on: the same bits
// as with cuDNN off, forward and backward, on a case cuDNN takes.
TEST(AttentionCuda, OneOffShapeRunsOwnKernels) {
  REQUIRE_GPU();
  if (!cuda::cudnn_attention_built()) GTEST_SKIP() << "built without cuDNN";
  const AttnCase c{2, 200, 200, 8, 2, 128, 0};
  const DType dt = DType::bf16;
  const Inputs in = make_inputs(c, dt, 91);
  const Tensor q = gpu(in.q, dt), k = gpu(in.k, dt), v = gpu(in.v, dt), d_o = gpu(in.d_o, dt);
  auto run = [&](bool cudnn, bool repeated) {
    const CudnnAttention path(cudnn);
    AttentionOptions opt = options_of(c);
    opt.repeated_shape = repeated;
    const AttentionResult r = attention_forward(q, k, v, opt);
    const AttentionGrads g = attention_backward(d_o, q, k, v, r.o, r.lse, opt);
    return std::vector<std::vector<double>>{r.o.to(DType::f32).to_f64_vector(), r.lse.to_f64_vector(),
                                            g.dq.to(DType::f32).to_f64_vector(), g.dk.to(DType::f32).to_f64_vector()};
  };
  const auto own = run(false, true), one_off = run(true, false), repeated = run(true, true);
  EXPECT_EQ(one_off, own) << "a one-off shape must not go to cuDNN";
  EXPECT_NE(repeated, own) << "a repeated shape should have gone to cuDNN (different rounding)";
}

TEST(AttentionCuda, BackwardIsBitwiseReproducible) {
  REQUIRE_GPU();
  // GQA with a group of 4 (dk, dv summed over the group) on the tensor-core and the general kernels, and on cuDNN's
  // deterministic backward (the last case, self-attention without a window, is one it takes).
  const AttnCase cases[] = {{2, 200, 300, 8, 2, 128, 0},
                            {1, 150, 150, 4, 1, 64, 33},
                            {1, 90, 90, 4, 1, 40, 0},
                            {2, 200, 200, 8, 2, 128, 0}};
  for (const bool cudnn : {false, true}) {
    const CudnnAttention path(cudnn);
    for (const AttnCase& c : cases)
      for (DType dt : kTypes) {
        SCOPED_TRACE(c.name() + " " + std::string(dtype_name(dt)) + (cudnn ? " cuDNN on" : " cuDNN off"));
        const Inputs in = make_inputs(c, dt, 77);
        const AttentionOptions opt = options_of(c);
        const Tensor q = gpu(in.q, dt), k = gpu(in.k, dt), v = gpu(in.v, dt), d_o = gpu(in.d_o, dt);
        const AttentionResult r = attention_forward(q, k, v, opt);
        const AttentionResult r2 = attention_forward(q, k, v, opt);
        EXPECT_EQ(r.o.to(DType::f32).to_f64_vector(), r2.o.to(DType::f32).to_f64_vector()) << "o";
        const AttentionGrads a = attention_backward(d_o, q, k, v, r.o, r.lse, opt);
        const AttentionGrads b = attention_backward(d_o, q, k, v, r.o, r.lse, opt);
        EXPECT_EQ(a.dq.to(DType::f32).to_f64_vector(), b.dq.to(DType::f32).to_f64_vector()) << "dq";
        EXPECT_EQ(a.dk.to(DType::f32).to_f64_vector(), b.dk.to(DType::f32).to_f64_vector()) << "dk";
        EXPECT_EQ(a.dv.to(DType::f32).to_f64_vector(), b.dv.to(DType::f32).to_f64_vector()) << "dv";
      }
  }
}

TEST(AttentionCuda, BadCallsRefused) {
  REQUIRE_GPU();
  const Shape qs{1, 4, 2, 64}, ks{1, 6, 1, 64};
  const Tensor q = Tensor::zeros(qs, DType::bf16, Device::cuda), k = Tensor::zeros(ks, DType::bf16, Device::cuda);
  const Tensor v = Tensor::zeros(ks, DType::bf16, Device::cuda);
  // Mixed dtypes, mixed devices, F64 on the GPU, a head dim past 256.
  EXPECT_THROW(attention_forward(q, Tensor::zeros(ks, DType::f16, Device::cuda), v), DTypeError);
  EXPECT_THROW(attention_forward(q, Tensor::zeros(ks, DType::bf16), v), ShapeError);
  EXPECT_THROW(attention_forward(Tensor::zeros(qs, DType::bf16), k, v), ShapeError);
  const Tensor k64 = Tensor::zeros(ks, DType::f64, Device::cuda);
  EXPECT_THROW(attention_forward(Tensor::zeros(qs, DType::f64, Device::cuda), k64, k64), DTypeError);
  EXPECT_THROW(attention_forward(Tensor::zeros({1, 2, 1, 300}, DType::bf16, Device::cuda),
                                 Tensor::zeros({1, 2, 1, 300}, DType::bf16, Device::cuda),
                                 Tensor::zeros({1, 2, 1, 300}, DType::bf16, Device::cuda)),
               UnsupportedError);
  // The shape contract holds on the GPU too.
  EXPECT_THROW(attention_forward(Tensor::zeros({1, 7, 2, 64}, DType::bf16, Device::cuda), k, v), ShapeError);
  EXPECT_THROW(attention_forward(Tensor::zeros({1, 4, 2, 32}, DType::bf16, Device::cuda), k, v), ShapeError);
  AttentionOptions bad;
  bad.window = -1;
  EXPECT_THROW(attention_forward(q, k, v, bad), ValueError);

  const AttentionResult r = attention_forward(q, k, v);
  const Tensor d_o = Tensor::zeros(qs, DType::bf16, Device::cuda);
  EXPECT_NO_THROW(attention_backward(d_o, q, k, v, r.o, r.lse));
  // lse not F32, do or o in another dtype or on another device.
  EXPECT_THROW(attention_backward(d_o, q, k, v, r.o, r.lse.to(DType::bf16)), DTypeError);
  EXPECT_THROW(attention_backward(Tensor::zeros(qs, DType::f16, Device::cuda), q, k, v, r.o, r.lse), DTypeError);
  EXPECT_THROW(attention_backward(d_o, q, k, v, r.o.to(DType::f32), r.lse), DTypeError);
  EXPECT_THROW(attention_backward(Tensor::zeros(qs, DType::bf16), q, k, v, r.o, r.lse), ShapeError);
  EXPECT_THROW(attention_backward(d_o, q, k, v, r.o, r.lse.cpu()), ShapeError);
  // A CPU call with a GPU tensor among its backward inputs.
  const Tensor qc = Tensor::zeros(qs, DType::f32), kc = Tensor::zeros(ks, DType::f32);
  const AttentionResult rc = attention_forward(qc, kc, kc);
  EXPECT_THROW(attention_backward(Tensor::zeros(qs, DType::f32, Device::cuda), qc, kc, kc, rc.o, rc.lse), ShapeError);
}

}  // namespace
}  // namespace gdn2
