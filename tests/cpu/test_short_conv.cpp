// Short causal convolution: forward vs a loop reference, every gradient vs fp64 finite differences, varlen
// packing, the decode step vs the full forward, dtypes and typed errors for bad arguments.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <string>

#include "cpu/op_test_util.h"
#include "gdn2/ops/dense.h"
#include "gdn2/ops/short_conv.h"

namespace gdn2 {
namespace {

using test::dot;
using test::finite_diff;
using test::random_tensor;
using test::slice_dim;

struct ConvCase {
  std::string name;
  int64_t B, T, C, W;
  std::vector<int64_t> cu;  // empty: [B, T, C] batch; else packed sequences (B = 1)
  bool bias, cache, weight_3d;
  ConvActivation act;
};

std::vector<ConvCase> conv_cases() {
  const auto silu = ConvActivation::silu, none = ConvActivation::none;
  return {
      {"B2_T9_C5_W4_silu_bias_cache_w3d", 2, 9, 5, 4, {}, true, true, true, silu},
      {"B3_T1_C3_W4_none", 3, 1, 3, 4, {}, false, false, false, none},
      {"B2_T2_C7_W4_silu_cache", 2, 2, 7, 4, {}, false, true, false, silu},  // T < W - 1
      {"B1_T6_C4_W1_none_bias", 1, 6, 4, 1, {}, true, false, false, none},   // no cache at all
      {"B2_T5_C3_W2_silu_bias_cache", 2, 5, 3, 2, {}, true, true, false, silu},
      {"B1_T8_C9_W5_none_cache", 1, 8, 9, 5, {}, false, true, true, none},
      {"cu_0_3_3_4_9_11_C5_W4_silu_bias_cache", 1, 11, 5, 4, {0, 3, 3, 4, 9, 11}, true, true, true, silu},
      {"cu_0_0_2_7_7_C3_W3_none_cache", 1, 7, 3, 3, {0, 0, 2, 7, 7}, false, true, false, none},
      {"cu_0_2_4_C6_W4_silu_nocache", 1, 4, 6, 4, {0, 2, 4}, true, false, false, silu},
  };
}

// The inputs of a case, all F64.
struct ConvInputs {
  Tensor x, weight, bias, cu, cache;
  std::vector<int64_t> offsets;
  int64_t N = 0;
};

ConvInputs make_inputs(const ConvCase& k, uint64_t seed) {
  ConvInputs in;
  in.x = random_tensor({k.B, k.T, k.C}, seed);
  in.weight = random_tensor(k.weight_3d ? Shape{k.C, 1, k.W} : Shape{k.C, k.W}, seed + 1);
  if (k.bias) in.bias = random_tensor({k.C}, seed + 2);
  if (k.cu.empty()) {
    for (int64_t b = 0; b <= k.B; ++b) in.offsets.push_back(b * k.T);
  } else {
    in.offsets = k.cu;
    in.cu = Tensor::from_vector<int32_t>({static_cast<int64_t>(k.cu.size())}, {k.cu.begin(), k.cu.end()});
  }
  in.N = static_cast<int64_t>(in.offsets.size()) - 1;
  if (k.cache) in.cache = random_tensor({in.N, k.C, k.W - 1}, seed + 3);
  return in;
}

// Obvious loop reference: y and the final cache, in double.
std::pair<Tensor, Tensor> conv_reference(const ConvInputs& in, ConvActivation act) {
  const int64_t C = in.x.size(-1), W = in.weight.size(-1), M = W - 1, N = in.N;
  const std::vector<double> x = in.x.to_f64_vector(), w = in.weight.to_f64_vector();
  const std::vector<double> b = in.bias.defined() ? in.bias.to_f64_vector() : std::vector<double>(C, 0.0);
  const std::vector<double> cache = in.cache.defined() ? in.cache.to_f64_vector() : std::vector<double>(N * C * M, 0.0);
  auto input = [&](int64_t n, int64_t p, int64_t c) {
    return p >= 0 ? x[(in.offsets[n] + p) * C + c] : cache[(n * C + c) * M + (M + p)];
  };
  std::vector<double> y(x.size()), fin(static_cast<size_t>(N * C * M));
  for (int64_t n = 0; n < N; ++n) {
    const int64_t L = in.offsets[n + 1] - in.offsets[n];
    for (int64_t t = 0; t < L; ++t)
      for (int64_t c = 0; c < C; ++c) {
        double z = b[c];
        for (int64_t i = 0; i < W; ++i) z += w[c * W + i] * input(n, t - W + 1 + i, c);
        y[(in.offsets[n] + t) * C + c] = act == ConvActivation::silu ? z / (1 + std::exp(-z)) : z;
      }
    for (int64_t c = 0; c < C; ++c)
      for (int64_t j = 0; j < M; ++j) fin[(n * C + c) * M + j] = input(n, L - M + j, c);
  }
  return {Tensor::from_vector(in.x.shape(), y), Tensor::from_vector({N, C, M}, fin)};
}

TEST(ShortConv, ForwardMatchesLoopReference) {
  for (const ConvCase& k : conv_cases()) {
    SCOPED_TRACE(k.name);
    const ConvInputs in = make_inputs(k, 11);
    const auto [y_ref, fin_ref] = conv_reference(in, k.act);
    const ShortConvResult r64 = short_conv_forward(in.x, in.weight, in.bias, k.act, in.cu, in.cache, true);
    EXPECT_EQ(r64.y.dtype(), DType::f64);
    EXPECT_EQ(r64.y.shape(), in.x.shape());
    EXPECT_LE(rel_rms_error(r64.y, y_ref), 1e-14);
    EXPECT_EQ(r64.final_cache.shape(), fin_ref.shape());
    EXPECT_LE(rel_rms_error(r64.final_cache, fin_ref), 0.0);
    auto f32 = [](const Tensor& t) { return t.defined() ? t.to(DType::f32) : t; };
    const ShortConvResult r32 =
        short_conv_forward(f32(in.x), f32(in.weight), f32(in.bias), k.act, in.cu, f32(in.cache), true);
    EXPECT_EQ(r32.y.dtype(), DType::f32);
    EXPECT_LE(rel_rms_error(r32.y, y_ref), 1e-6);
    EXPECT_LE(rel_rms_error(r32.final_cache, fin_ref), 1e-7);
    EXPECT_FALSE(short_conv_forward(in.x, in.weight, in.bias, k.act, in.cu, in.cache).final_cache.defined());
  }
}

TEST(ShortConv, GradientsMatchFiniteDifferences) {
  for (const ConvCase& k : conv_cases()) {
    for (bool with_d_final : {false, true}) {
      SCOPED_TRACE(k.name + (with_d_final ? " with d_final_cache" : ""));
      ConvInputs in = make_inputs(k, 23);
      const Tensor dy = random_tensor(in.x.shape(), 29);
      const Tensor d_final = with_d_final ? random_tensor({in.N, k.C, k.W - 1}, 31) : Tensor();
      auto loss = [&]() {
        const ShortConvResult r = short_conv_forward(in.x, in.weight, in.bias, k.act, in.cu, in.cache, true);
        return dot(r.y, dy) + (d_final.defined() ? dot(r.final_cache, d_final) : 0.0);
      };
      const ShortConvGrads g = short_conv_backward(dy, in.x, in.weight, in.bias, k.act, in.cu, in.cache, d_final);
      EXPECT_EQ(g.dx.shape(), in.x.shape());
      EXPECT_EQ(g.dweight.shape(), in.weight.shape());
      EXPECT_EQ(g.dbias.defined(), k.bias);
      EXPECT_EQ(g.d_initial_cache.defined(), k.cache);
      EXPECT_LE(rel_rms_error(g.dx, finite_diff(in.x, loss)), 1e-6) << "dx";
      EXPECT_LE(rel_rms_error(g.dweight, finite_diff(in.weight, loss)), 1e-6) << "dweight";
      if (k.bias) {
        EXPECT_LE(rel_rms_error(g.dbias, finite_diff(in.bias, loss)), 1e-6) << "dbias";
      }
      if (k.cache) {
        EXPECT_LE(rel_rms_error(g.d_initial_cache, finite_diff(in.cache, loss)), 1e-6) << "d_cache";
      }
    }
  }
}

// fla issue #955: the weight gradient with cu_seqlens must be the sum of the per-sequence weight gradients.
TEST(ShortConv, VarlenEqualsPerSequenceCalls) {
  for (const ConvCase& k : conv_cases()) {
    if (k.cu.empty()) continue;
    SCOPED_TRACE(k.name);
    const ConvInputs in = make_inputs(k, 37);
    const Tensor dy = random_tensor(in.x.shape(), 41);
    const Tensor d_final = random_tensor({in.N, k.C, k.W - 1}, 43);
    const ShortConvResult r = short_conv_forward(in.x, in.weight, in.bias, k.act, in.cu, in.cache, true);
    const ShortConvGrads g = short_conv_backward(dy, in.x, in.weight, in.bias, k.act, in.cu, in.cache, d_final);
    std::vector<double> dweight_sum(static_cast<size_t>(in.weight.numel()), 0.0), dbias_sum(k.C, 0.0);
    for (int64_t n = 0; n < in.N; ++n) {
      const int64_t b = in.offsets[n], e = in.offsets[n + 1];
      SCOPED_TRACE("sequence " + std::to_string(n) + " length " + std::to_string(e - b));
      const Tensor xn = slice_dim(in.x, 1, b, e), dyn = slice_dim(dy, 1, b, e);
      const Tensor cn = in.cache.defined() ? slice_dim(in.cache, 0, n, n + 1) : Tensor();
      const Tensor dfn = slice_dim(d_final, 0, n, n + 1);
      const ShortConvResult rn = short_conv_forward(xn, in.weight, in.bias, k.act, {}, cn, true);
      const ShortConvGrads gn = short_conv_backward(dyn, xn, in.weight, in.bias, k.act, {}, cn, dfn);
      EXPECT_LE(rel_rms_error(slice_dim(r.y, 1, b, e), rn.y), 1e-15);
      EXPECT_LE(rel_rms_error(slice_dim(r.final_cache, 0, n, n + 1), rn.final_cache), 0.0);
      EXPECT_LE(rel_rms_error(slice_dim(g.dx, 1, b, e), gn.dx), 1e-15);
      if (cn.defined()) {
        EXPECT_LE(rel_rms_error(slice_dim(g.d_initial_cache, 0, n, n + 1), gn.d_initial_cache), 1e-15);
      }
      const std::vector<double> dw = gn.dweight.to_f64_vector();
      for (size_t i = 0; i < dw.size(); ++i) dweight_sum[i] += dw[i];
      if (k.bias) {
        const std::vector<double> db = gn.dbias.to_f64_vector();
        for (size_t i = 0; i < db.size(); ++i) dbias_sum[i] += db[i];
      }
    }
    EXPECT_LE(rel_rms_error(g.dweight, Tensor::from_vector(in.weight.shape(), dweight_sum)), 1e-13);
    if (k.bias) {
      EXPECT_LE(rel_rms_error(g.dbias, Tensor::from_vector({k.C}, dbias_sum)), 1e-13);
    }
  }
}

TEST(ShortConv, BatchEqualsPackedSequences) {
  const int64_t B = 3, T = 6, C = 5, W = 4;
  const Tensor x = random_tensor({B, T, C}, 51).to(DType::f32), w = random_tensor({C, W}, 52).to(DType::f32);
  const Tensor bias = random_tensor({C}, 53).to(DType::f32), cache = random_tensor({B, C, W - 1}, 54).to(DType::f32);
  const Tensor dy = random_tensor({B, T, C}, 55).to(DType::f32);
  const Tensor cu = Tensor::from_vector<int64_t>({B + 1}, {0, T, 2 * T, 3 * T});
  const Tensor xp = x.reshape({1, B * T, C}), dyp = dy.reshape({1, B * T, C});
  const auto act = ConvActivation::silu;
  const ShortConvResult rb = short_conv_forward(x, w, bias, act, {}, cache, true);
  const ShortConvResult rp = short_conv_forward(xp, w, bias, act, cu, cache, true);
  EXPECT_EQ(rp.y.shape(), xp.shape());
  EXPECT_EQ(rel_rms_error(rb.y, rp.y), 0.0);
  EXPECT_EQ(rel_rms_error(rb.final_cache, rp.final_cache), 0.0);
  const ShortConvGrads gb = short_conv_backward(dy, x, w, bias, act, {}, cache);
  const ShortConvGrads gp = short_conv_backward(dyp, xp, w, bias, act, cu, cache);
  EXPECT_EQ(rel_rms_error(gb.dx, gp.dx), 0.0);
  EXPECT_EQ(rel_rms_error(gb.dweight, gp.dweight), 0.0);
  EXPECT_EQ(rel_rms_error(gb.dbias, gp.dbias), 0.0);
  EXPECT_EQ(rel_rms_error(gb.d_initial_cache, gp.d_initial_cache), 0.0);
}

// The decode step, token by token, equals the full forward (y and the final cache), for cache dtypes F32 and F64.
TEST(ShortConv, DecodeStepEqualsFullForward) {
  struct StepCase {
    const char* name;
    int64_t N, T, C, W;
    DType x_dt, cache_dt;
    double tol;
  };
  const StepCase cases[] = {
      {"N3_T7_C6_W4_f32", 3, 7, 6, 4, DType::f32, DType::f32, 1e-6},
      {"N2_T5_C9_W4_f64", 2, 5, 9, 4, DType::f64, DType::f64, 1e-15},
      {"N2_T4_C3_W4_f32x_f64cache", 2, 4, 3, 4, DType::f32, DType::f64, 1e-6},
      {"N1_T5_C4_W1_bf16x", 1, 5, 4, 1, DType::bf16, DType::f32, 1e-6},
      {"N2_T3_C5_W6_f32", 2, 3, 5, 6, DType::f32, DType::f32, 1e-6},  // T < W - 1
  };
  for (const StepCase& k : cases) {
    SCOPED_TRACE(k.name);
    for (ConvActivation act : {ConvActivation::none, ConvActivation::silu}) {
      const Tensor x = random_tensor({k.N, k.T, k.C}, 61).to(k.x_dt), w = random_tensor({k.C, 1, k.W}, 62);
      const Tensor bias = random_tensor({k.C}, 63), cache0 = random_tensor({k.N, k.C, k.W - 1}, 64).to(k.cache_dt);
      const ShortConvResult full = short_conv_forward(x, w, bias, act, {}, cache0, true);
      Tensor cache = cache0.clone();
      for (int64_t t = 0; t < k.T; ++t) {
        const Tensor xt = slice_dim(x, 1, t, t + 1).reshape({k.N, k.C}).to(k.x_dt);
        const Tensor yt = short_conv_step(xt, cache, w, bias, act);
        EXPECT_EQ(yt.shape(), (Shape{k.N, k.C}));
        EXPECT_EQ(yt.dtype(), full.y.dtype());
        EXPECT_LE(rel_rms_error(yt, slice_dim(full.y, 1, t, t + 1)), k.tol) << "token " << t;
      }
      EXPECT_EQ(cache.dtype(), k.cache_dt);
      EXPECT_LE(rel_rms_error(cache, full.final_cache), k.tol);
    }
  }
}

// The split step's parts are the whole step's output split along the channels (an empty part included), and it
// updates the cache alike.
TEST(ShortConv, DecodeStepSplitEqualsSplitOfStep) {
  const int64_t N = 3, C = 11, W = 4;
  const Tensor x = random_tensor({N, C}, 71), w = random_tensor({C, W}, 72), bias = random_tensor({C}, 73);
  const Tensor cache0 = random_tensor({N, C, W - 1}, 74);
  for (const std::vector<int64_t>& sizes : {std::vector<int64_t>{11}, {4, 4, 3}, {2, 0, 9}}) {
    Tensor whole_cache = cache0.clone(), split_cache = cache0.clone();
    const Tensor y = short_conv_step(x, whole_cache, w, bias, ConvActivation::silu);
    const std::vector<Tensor> parts = short_conv_step_split(x, split_cache, w, bias, ConvActivation::silu, sizes);
    ASSERT_EQ(parts.size(), sizes.size());
    const std::vector<Tensor> want = split_last(y, sizes);
    for (size_t i = 0; i < sizes.size(); ++i) {
      EXPECT_EQ(parts[i].shape(), (Shape{N, sizes[i]}));
      EXPECT_EQ(parts[i].to_f64_vector(), want[i].to_f64_vector()) << "part " << i;
    }
    EXPECT_EQ(split_cache.to_f64_vector(), whole_cache.to_f64_vector());
  }
  Tensor cache = cache0.clone();
  const auto silu = ConvActivation::silu;
  EXPECT_THROW(short_conv_step_split(x, cache, w, bias, silu, {4, 4}), ShapeError);      // sum below C
  EXPECT_THROW(short_conv_step_split(x, cache, w, bias, silu, {12, -1}), ShapeError);    // a negative part
  EXPECT_THROW(short_conv_step_split(x, cache, w, bias, silu, {}), ShapeError);          // no part
  EXPECT_EQ(cache.to_f64_vector(), cache0.to_f64_vector());                              // refused calls change nothing
}

// Large enough for the OpenMP paths: matches the reference, and every gradient is bitwise the same for any
// thread count (the weight and bias sums are reduced in a fixed order).
TEST(ShortConv, ParallelPathIsCorrectAndDeterministic) {
  const ConvCase k{"cu_ragged_T1100_C40_W4", 1, 1100, 40, 4, {0, 1, 500, 500, 733, 1100}, true, true, false,
                   ConvActivation::silu};
  const ConvInputs in = make_inputs(k, 91);
  const auto [y_ref, fin_ref] = conv_reference(in, k.act);
  const Tensor x = in.x.to(DType::f32), w = in.weight.to(DType::f32), b = in.bias.to(DType::f32);
  const Tensor cache = in.cache.to(DType::f32), dy = random_tensor(in.x.shape(), 92).to(DType::f32);
  const ShortConvResult r = short_conv_forward(x, w, b, k.act, in.cu, cache, true);
  EXPECT_LE(rel_rms_error(r.y, y_ref), 1e-6);
  EXPECT_LE(rel_rms_error(r.final_cache, fin_ref), 1e-7);
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  const ShortConvGrads g1 = short_conv_backward(dy, x, w, b, k.act, in.cu, cache);
  omp_set_num_threads(3);
  const ShortConvGrads g3 = short_conv_backward(dy, x, w, b, k.act, in.cu, cache);
  omp_set_num_threads(threads);
  EXPECT_EQ(rel_rms_error(g1.dx, g3.dx), 0.0);
  EXPECT_EQ(rel_rms_error(g1.dweight, g3.dweight), 0.0);
  EXPECT_EQ(rel_rms_error(g1.dbias, g3.dbias), 0.0);
  EXPECT_EQ(rel_rms_error(g1.d_initial_cache, g3.d_initial_cache), 0.0);
}

TEST(ShortConv, HalfInputsComputeInFloat) {
  const Tensor x = random_tensor({2, 5, 4}, 71), w = random_tensor({4, 4}, 72), b = random_tensor({4}, 73);
  const Tensor xb = x.to(DType::bf16), wh = w.to(DType::f16);
  const ShortConvResult r = short_conv_forward(xb, wh, b, ConvActivation::silu);
  const ShortConvResult r32 =
      short_conv_forward(xb.to(DType::f32), wh.to(DType::f32), b.to(DType::f32), ConvActivation::silu);
  EXPECT_EQ(r.y.dtype(), DType::f32);
  EXPECT_EQ(rel_rms_error(r.y, r32.y), 0.0);
  const ShortConvGrads g = short_conv_backward(r.y.to(DType::bf16), xb, wh, b, ConvActivation::silu);
  EXPECT_EQ(g.dx.dtype(), DType::f32);
  EXPECT_EQ(g.dweight.dtype(), DType::f32);
  EXPECT_EQ(g.dbias.dtype(), DType::f32);
}

TEST(ShortConv, BadArgumentsThrowTypedErrors) {
  const auto none = ConvActivation::none;
  const Tensor x = random_tensor({1, 6, 4}, 81), w = random_tensor({4, 3}, 82), b = random_tensor({4}, 83);
  auto cu32 = [](std::vector<int32_t> v) { return Tensor::from_vector<int32_t>({static_cast<int64_t>(v.size())}, v); };
  EXPECT_THROW(short_conv_forward(x.reshape({6, 4}), w, b, none), ShapeError);                       // x not 3-D
  EXPECT_THROW(short_conv_forward(x, random_tensor({5, 3}, 1), b, none), ShapeError);                // weight C
  EXPECT_THROW(short_conv_forward(x, random_tensor({4, 2, 3}, 1), b, none), ShapeError);             // [C, 2, W]
  EXPECT_THROW(short_conv_forward(x, Tensor::zeros({4, 0}, DType::f32), b, none), ShapeError);       // W = 0
  EXPECT_THROW(short_conv_forward(x, w, random_tensor({3}, 1), none), ShapeError);                   // bias
  EXPECT_THROW(short_conv_forward(x, w, b, none, {}, random_tensor({2, 4, 2}, 1)), ShapeError);       // cache N
  EXPECT_THROW(short_conv_forward(x, w, b, none, {}, random_tensor({1, 4, 3}, 1)), ShapeError);       // cache W-1
  EXPECT_THROW(short_conv_forward(Tensor::zeros({1, 6, 4}, DType::i32), w, b, none), DTypeError);    // int x
  EXPECT_THROW(short_conv_forward(x, w.to(DType::i64), b, none), DTypeError);                         // int weight
  EXPECT_THROW(short_conv_forward(Tensor(), w, b, none), ValueError);                                 // missing x
  // cu_seqlens
  EXPECT_THROW(short_conv_forward(x, w, b, none, random_tensor({3}, 1)), DTypeError);                 // float cu
  EXPECT_THROW(short_conv_forward(x, w, b, none, cu32({1, 3, 6})), ValueError);                       // start != 0
  EXPECT_THROW(short_conv_forward(x, w, b, none, cu32({0, 4, 3, 6})), ValueError);                    // decreasing
  EXPECT_THROW(short_conv_forward(x, w, b, none, cu32({0, 3, 5})), ValueError);                       // end != T
  EXPECT_THROW(short_conv_forward(x, w, b, none, cu32({0, 3, 7})), ValueError);                       // end > T
  EXPECT_THROW(short_conv_forward(x, w, b, none, cu32({0})), ShapeError);                             // N = 0
  EXPECT_THROW(short_conv_forward(x, w, b, none, cu32({0, 3, 6}).reshape({1, 3})), ShapeError);       // 2-D cu
  EXPECT_THROW(short_conv_forward(random_tensor({2, 3, 4}, 1), w, b, none, cu32({0, 3, 6})), ShapeError);  // B > 1
  EXPECT_THROW(short_conv_forward(x, w, b, none, cu32({0, 3, 6}), random_tensor({1, 4, 2}, 1)), ShapeError);
  // backward
  EXPECT_THROW(short_conv_backward(random_tensor({1, 5, 4}, 1), x, w, b, none), ShapeError);         // dy shape
  EXPECT_THROW(short_conv_backward(x, x, w, b, none, {}, {}, random_tensor({2, 4, 2}, 1)), ShapeError);
  EXPECT_THROW(short_conv_backward(Tensor(), x, w, b, none), ValueError);
  // decode step
  Tensor cache = Tensor::zeros({2, 4, 2}, DType::f32);
  EXPECT_THROW(short_conv_step(random_tensor({2, 4}, 1), cache, random_tensor({4, 4}, 1), b, none), ShapeError);
  EXPECT_THROW(short_conv_step(random_tensor({3, 4}, 1), cache, w, b, none), ShapeError);
  EXPECT_THROW(short_conv_step(random_tensor({2, 1, 4}, 1), cache, w, b, none), ShapeError);
  Tensor cache_bf16 = Tensor::zeros({2, 4, 2}, DType::bf16);
  EXPECT_THROW(short_conv_step(random_tensor({2, 4}, 1), cache_bf16, w, b, none), DTypeError);
  Tensor no_cache;
  EXPECT_THROW(short_conv_step(random_tensor({2, 4}, 1), no_cache, w, b, none), ValueError);
}

}  // namespace
}  // namespace gdn2
