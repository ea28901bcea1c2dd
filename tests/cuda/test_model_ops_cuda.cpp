// The model's small ops on the GPU against the CPU ops on the same values (inputs rounded to the GPU dtype first):
// pointwise activations, SwiGLU, add/scale, split/concat, embedding, the fused LM-head cross-entropy (several row
// blocks), gated RMSNorm, RoPE, the short convolution (forward, backward, decode step) and softmax attention (odd
// lengths, GQA, windows, cached queries), with every gradient; bitwise determinism of the parameter gradients.
#include <gtest/gtest.h>

#include <string>

#include "cpu/op_test_util.h"
#include "cuda/model_ops.h"
#include "cuda/require_gpu.h"
#include "gdn2/ops/attention.h"
#include "gdn2/ops/dense.h"
#include "gdn2/ops/norm.h"
#include "gdn2/ops/rope.h"
#include "gdn2/ops/short_conv.h"

namespace gdn2 {
namespace {

using test::random_tensor;

// Budgets (SPEC §6): fp32 arithmetic either way; low-precision outputs round once (bf16 2^-9, f16 2^-12 relative).
double budget(DType dt) { return dt == DType::f32 ? 2e-5 : dt == DType::bf16 ? 8e-3 : 2e-3; }

// Values representable in dt, as F32 on the CPU (the reference's input).
Tensor held(const Shape& s, uint64_t seed, DType dt, double lo = -1, double hi = 1) {
  return random_tensor(s, seed, lo, hi).to(dt).to(DType::f32);
}
Tensor gpu(const Tensor& t, DType dt) { return t.defined() ? t.to(dt).to(Device::cuda) : Tensor(); }

#define EXPECT_CLOSE(got, want, dt, what) \
  EXPECT_LE(rel_rms_error((got), (want)), budget(dt)) << (what) << " " << dtype_name(dt)

const DType kTypes[] = {DType::f32, DType::bf16, DType::f16};

TEST(ModelOpsCuda, Pointwise) {
  REQUIRE_GPU();
  for (DType dt : kTypes) {
    const Tensor a = held({3, 37, 5}, 1, dt, -4, 4), b = held({3, 37, 5}, 2, dt);
    const Tensor ag = gpu(a, dt), bg = gpu(b, dt);
    EXPECT_CLOSE(sigmoid_forward(ag), sigmoid_forward(a), dt, "sigmoid");
    EXPECT_CLOSE(silu_forward(ag), silu_forward(a), dt, "silu");
    EXPECT_CLOSE(sigmoid_backward(bg, ag), sigmoid_backward(b, a), dt, "sigmoid_backward");
    EXPECT_CLOSE(silu_backward(bg, ag), silu_backward(b, a), dt, "silu_backward");
    EXPECT_CLOSE(swiglu_forward(ag, bg), swiglu_forward(a, b), dt, "swiglu");
    EXPECT_CLOSE(mul_forward(ag, bg), mul_forward(a, b), dt, "mul");
    const Tensor d = held({3, 37, 5}, 3, dt);
    Tensor dg, du, dg_ref, du_ref;
    swiglu_backward(gpu(d, dt), ag, bg, dg, du);
    swiglu_backward(d, a, b, dg_ref, du_ref);
    EXPECT_CLOSE(dg, dg_ref, dt, "swiglu dgate");
    EXPECT_CLOSE(du, du_ref, dt, "swiglu dup");
    Tensor x = ag.clone(), x_ref = a.clone();
    add_inplace(x, bg);
    scale_inplace(x, -0.5);
    add_inplace(x_ref, b);
    scale_inplace(x_ref, -0.5);
    EXPECT_CLOSE(x, x_ref, dt, "add, scale");
    Tensor acc = a.to(Device::cuda);  // an F32 master gradient plus a low-precision one
    add_inplace(acc, bg);
    Tensor acc_ref = a.clone();
    add_inplace(acc_ref, b);
    EXPECT_LE(rel_rms_error(acc, acc_ref), 1e-6);
    const std::vector<Tensor> parts = split_last(ag, {2, 0, 3});
    EXPECT_EQ(parts[1].shape(), (Shape{3, 37, 0}));
    const std::vector<Tensor> parts_ref = split_last(a, {2, 0, 3});
    EXPECT_EQ(parts[2].to(DType::f32).to_f64_vector(), parts_ref[2].to_f64_vector());
    EXPECT_EQ(concat_last({parts[2], parts[0]}).to(DType::f32).to_f64_vector(),
              concat_last({parts_ref[2], parts_ref[0]}).to_f64_vector());
  }
  EXPECT_THROW(mul_forward(Tensor::zeros({3}, DType::f32, Device::cuda), Tensor::zeros({3}, DType::bf16, Device::cuda)),
               DTypeError);
  EXPECT_THROW(mul_forward(Tensor::zeros({3}, DType::f32, Device::cuda), Tensor::zeros({3}, DType::f32)), ShapeError);
}

TEST(ModelOpsCuda, EmbeddingAndCrossEntropy) {
  REQUIRE_GPU();
  for (DType dt : kTypes) {
    const int64_t V = 301, D = 130, N = 257;
    const Tensor table = held({V, D}, 4, dt);
    const Tensor ids = Tensor::from_vector<int32_t>({N}, [&] {
      std::vector<int32_t> v;
      for (int64_t i = 0; i < N; ++i) v.push_back(static_cast<int32_t>((i * 7919) % 61));  // repeated ids
      return v;
    }());
    EXPECT_CLOSE(embedding_forward(ids, gpu(table, dt)), embedding_forward(ids, table), dt, "embedding");
    const Tensor dy = held({N, D}, 5, dt);
    Tensor dt_gpu = Tensor::zeros({V, D}, DType::f32, Device::cuda), dt_ref = Tensor::zeros({V, D}, DType::f32);
    embedding_backward(gpu(dy, dt), ids, dt_gpu);
    embedding_backward(dy, ids, dt_ref);
    EXPECT_LE(rel_rms_error(dt_gpu, dt_ref), 1e-6) << dtype_name(dt);
    Tensor again = Tensor::zeros({V, D}, DType::f32, Device::cuda);
    embedding_backward(gpu(dy, dt), ids.to(Device::cuda), again);
    EXPECT_EQ(again.to_f64_vector(), dt_gpu.to_f64_vector());
    EXPECT_THROW(embedding_forward(Tensor::from_vector<int32_t>({1}, {static_cast<int32_t>(V)}), gpu(table, dt)),
                 ValueError);

    const Tensor h = held({N, D}, 6, dt, -0.5, 0.5);
    std::vector<int32_t> tv;
    for (int64_t i = 0; i < N; ++i) tv.push_back(i % 11 == 3 ? -1 : static_cast<int32_t>((i * 31) % V));
    const Tensor targets = Tensor::from_vector<int32_t>({N}, tv);
    Tensor dw_ref = Tensor::zeros({V, D}, DType::f32);
    const LmLoss ref = lm_head_cross_entropy(h, table, targets, true, &dw_ref, 0.5);
    for (int64_t rows : {int64_t{0}, int64_t{64}, int64_t{1}}) {  // automatic, several blocks, one row per block
      Tensor dw = Tensor::zeros({V, D}, DType::f32, Device::cuda);
      const LmLoss got = cuda::lm_head_cross_entropy(gpu(h, dt), gpu(table, dt), targets, true, &dw, 0.5, rows);
      EXPECT_EQ(got.count, ref.count);
      EXPECT_NEAR(got.loss, ref.loss, (dt == DType::f32 ? 1e-5 : 2e-3) * ref.loss) << dtype_name(dt);
      EXPECT_CLOSE(got.dh, ref.dh, dt, "cross-entropy dh");
      EXPECT_LE(rel_rms_error(dw, dw_ref), 2 * budget(dt)) << "cross-entropy dW " << dtype_name(dt);
    }
    const LmLoss none = lm_head_cross_entropy(gpu(h, dt), gpu(table, dt),
                                              Tensor::full({N}, DType::i32, -1), true, nullptr);
    EXPECT_EQ(none.count, 0);
    EXPECT_EQ(none.loss, 0.0);
    EXPECT_THROW(lm_head_cross_entropy(gpu(h, dt), gpu(table, dt), Tensor::full({N}, DType::i32, V), false, nullptr),
                 ValueError);
  }
}

TEST(ModelOpsCuda, RmsNorm) {
  REQUIRE_GPU();
  for (DType dt : kTypes)
    for (int64_t D : {1, 7, 64, 130, 2048})
      for (int variant = 0; variant < 4; ++variant) {  // plain, zero-centred, sigmoid gate, silu gate
        const Shape s{3, 37, D};
        const Tensor x = held(s, 7, dt), w = held({D}, 8, DType::f32), dy = held(s, 9, dt);
        const Tensor gate = variant >= 2 ? held(s, 10, dt, -3, 3) : Tensor();
        RmsNormOptions o;
        o.eps = 1e-6;
        o.zero_centred = variant == 1;
        o.gate_activation = variant == 3 ? NormGateActivation::silu : NormGateActivation::sigmoid;
        const RmsNormResult r = rms_norm_forward(gpu(x, dt), w.to(Device::cuda), gpu(gate, dt), o);
        const RmsNormResult ref = rms_norm_forward(x, w, gate, o);
        const std::string what = "rms D " + std::to_string(D) + " variant " + std::to_string(variant);
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
      }
}

TEST(ModelOpsCuda, Rope) {
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

TEST(ModelOpsCuda, ShortConv) {
  REQUIRE_GPU();
  for (DType dt : kTypes)
    for (bool bias : {false, true})
      for (bool cache : {false, true}) {
        const int64_t B = 2, T = 37, C = 45, W = 4;
        const Tensor x = held({B, T, C}, 12, dt), w = held({C, 1, W}, 13, DType::f32), dy = held({B, T, C}, 14, dt);
        const Tensor b = bias ? held({C}, 15, DType::f32) : Tensor();
        const Tensor c0 = cache ? held({B, C, W - 1}, 16, DType::f32) : Tensor();
        const auto act = ConvActivation::silu;
        const ShortConvResult r = short_conv_forward(gpu(x, dt), w.to(Device::cuda), gpu(b, DType::f32), act, {},
                                                     gpu(c0, DType::f32), true);
        const ShortConvResult ref = short_conv_forward(x, w, b, act, {}, c0, true);
        const std::string what = std::string("conv bias ") + (bias ? "1" : "0") + " cache " + (cache ? "1" : "0");
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

struct AttnCase {
  int64_t B, Tq, Tk, Hq, Hkv, D, W;
};

TEST(ModelOpsCuda, Attention) {
  REQUIRE_GPU();
  const AttnCase cases[] = {{2, 37, 37, 4, 2, 64, 0},  {1, 200, 200, 2, 1, 128, 17}, {1, 33, 100, 4, 1, 40, 0},
                            {2, 1, 77, 4, 2, 64, 0},   {1, 130, 130, 3, 3, 128, 0},  {0, 5, 5, 2, 1, 64, 0}};
  uint64_t seed = 20;
  for (const AttnCase& c : cases)
    for (DType dt : kTypes) {
      const Tensor q = held({c.B, c.Tq, c.Hq, c.D}, ++seed, dt), k = held({c.B, c.Tk, c.Hkv, c.D}, ++seed, dt);
      const Tensor v = held({c.B, c.Tk, c.Hkv, c.D}, ++seed, dt), d_o = held({c.B, c.Tq, c.Hq, c.D}, ++seed, dt);
      AttentionOptions o;
      o.window = c.W;
      const std::string what = "attention B" + std::to_string(c.B) + " Tq" + std::to_string(c.Tq) + " Tk" +
                               std::to_string(c.Tk) + " D" + std::to_string(c.D) + " W" + std::to_string(c.W);
      const AttentionResult r = attention_forward(gpu(q, dt), gpu(k, dt), gpu(v, dt), o);
      const AttentionResult ref = attention_forward(q, k, v, o);
      if (c.B == 0) {
        EXPECT_EQ(r.o.numel(), 0);
        continue;
      }
      EXPECT_CLOSE(r.o, ref.o, dt, what + " o");
      EXPECT_LE(rel_rms_error(r.lse, ref.lse), 1e-5) << what;
      // The backward from the reference's o (rounded to dt) and the GPU's lse.
      const AttentionGrads g = attention_backward(gpu(d_o, dt), gpu(q, dt), gpu(k, dt), gpu(v, dt), r.o, r.lse, o);
      const AttentionGrads gr = attention_backward(d_o, q, k, v, ref.o, ref.lse, o);
      EXPECT_LE(rel_rms_error(g.dq, gr.dq), 2 * budget(dt)) << what << " dq " << dtype_name(dt);
      EXPECT_LE(rel_rms_error(g.dk, gr.dk), 2 * budget(dt)) << what << " dk " << dtype_name(dt);
      EXPECT_LE(rel_rms_error(g.dv, gr.dv), 2 * budget(dt)) << what << " dv " << dtype_name(dt);
      const AttentionGrads g2 = attention_backward(gpu(d_o, dt), gpu(q, dt), gpu(k, dt), gpu(v, dt), r.o, r.lse, o);
      EXPECT_EQ(g2.dk.to(DType::f32).to_f64_vector(), g.dk.to(DType::f32).to_f64_vector()) << what;
    }
  EXPECT_THROW(attention_forward(Tensor::zeros({1, 2, 1, 300}, DType::bf16, Device::cuda),
                                 Tensor::zeros({1, 2, 1, 300}, DType::bf16, Device::cuda),
                                 Tensor::zeros({1, 2, 1, 300}, DType::bf16, Device::cuda)),
               UnsupportedError);
}

}  // namespace
}  // namespace gdn2
