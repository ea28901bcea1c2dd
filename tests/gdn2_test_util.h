// Test helpers: random GDN-2 problems (every gate mode, GVA, varlen, extreme gates) and error comparison.
#pragma once

#include <cmath>
#include <cstdint>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "gdn2/ops/gdn2.h"

namespace gdn2::test {

enum class GateRange { normal, near_zero, very_negative };

struct Gdn2Case {
  int64_t B = 1, T = 64, H = 2, HV = 2, K = 32, V = 32;
  std::vector<int64_t> seqlens;  // non-empty: packed varlen batch (B = 1, T = sum)
  std::string g_form = "channel", b_form = "channel", w_form = "channel";  // channel | head | none
  int64_t g_heads = 0, b_heads = 0;  // 0: H
  bool h0 = true;
  bool l2norm = true;
  GateRange g_range = GateRange::normal;
  double b_max = 1.0;  // 2 with allow_neg_eigval
  double b_fixed = -1; // >= 0: every b equals this value
  DType dtype = DType::f32;
  uint64_t seed = 1;

  std::string name() const {
    std::string s = "B" + std::to_string(B) + "T" + std::to_string(T) + "H" + std::to_string(H) + "HV" +
                    std::to_string(HV) + "K" + std::to_string(K) + "V" + std::to_string(V);
    if (!seqlens.empty()) s += "_varlen" + std::to_string(seqlens.size());
    s += "_g" + g_form + "_b" + b_form + "_w" + w_form;
    if (g_range == GateRange::near_zero) s += "_g0";
    if (g_range == GateRange::very_negative) s += "_gneg";
    if (b_fixed >= 0) s += "_bfix" + std::to_string(b_fixed);
    if (b_max != 1.0) s += "_negeig";
    if (!h0) s += "_noh0";
    return s;
  }
};

class Rng {
 public:
  explicit Rng(uint64_t seed) : gen_(seed) {}
  double normal() { return nd_(gen_); }
  double uniform() { return ud_(gen_); }

 private:
  std::mt19937_64 gen_;
  std::normal_distribution<double> nd_{0.0, 1.0};
  std::uniform_real_distribution<double> ud_{0.0, 1.0};
};

inline Tensor random_tensor(const Shape& shape, DType dt, Rng& rng, double (*f)(Rng&)) {
  std::vector<double> v(static_cast<size_t>(shape_numel(shape)));
  for (double& x : v) x = f(rng);
  return Tensor::from_vector(shape, v).to(dt);
}

inline Gdn2Inputs make_inputs(Gdn2Case& c) {
  Rng rng(c.seed);
  Gdn2Inputs in;
  if (!c.seqlens.empty()) {
    c.B = 1;
    c.T = std::accumulate(c.seqlens.begin(), c.seqlens.end(), int64_t{0});
    std::vector<int64_t> cu{0};
    for (int64_t l : c.seqlens) cu.push_back(cu.back() + l);
    in.cu_seqlens = Tensor::from_vector<int64_t>({static_cast<int64_t>(cu.size())}, cu);
  }
  const int64_t N = c.seqlens.empty() ? c.B : static_cast<int64_t>(c.seqlens.size());
  auto normal = [](Rng& r) { return r.normal(); };
  in.q = random_tensor({c.B, c.T, c.H, c.K}, c.dtype, rng, normal);
  in.k = random_tensor({c.B, c.T, c.H, c.K}, c.dtype, rng, normal);
  if (!c.l2norm) {  // the recurrence expects unit keys: normalise here instead of in the op
    for (Tensor* t : {&in.q, &in.k}) {
      std::vector<double> v = t->to_f64_vector();
      for (size_t r = 0; r < v.size(); r += static_cast<size_t>(c.K)) {
        double ss = 0;
        for (int64_t d = 0; d < c.K; ++d) ss += v[r + d] * v[r + d];
        for (int64_t d = 0; d < c.K; ++d) v[r + d] /= std::sqrt(ss);
      }
      *t = Tensor::from_vector(t->shape(), v).to(c.dtype);
    }
  }
  in.v = random_tensor({c.B, c.T, c.HV, c.V}, c.dtype, rng, normal);
  auto gate_shape = [&](const std::string& form, int64_t heads, int64_t dim) -> Shape {
    if (form == "channel") return {c.B, c.T, heads, dim};
    return {c.B, c.T, heads};
  };
  const int64_t gh = c.g_heads ? c.g_heads : c.H, bh = c.b_heads ? c.b_heads : c.H;
  double (*gfun)(Rng&) = [](Rng& r) { return -std::exp(-2.0 + 1.5 * r.normal()); };
  if (c.g_range == GateRange::near_zero) gfun = [](Rng& r) { return -1e-4 * r.uniform(); };
  if (c.g_range == GateRange::very_negative) gfun = [](Rng& r) { return -(5.0 + 30.0 * r.uniform()); };
  in.g_log = random_tensor(gate_shape(c.g_form, gh, c.K), c.dtype, rng, gfun);
  if (c.b_form != "none") {
    in.b = random_tensor(gate_shape(c.b_form, bh, c.K), DType::f64, rng, [](Rng& r) { return r.uniform(); });
    std::vector<double> v = in.b.to_f64_vector();
    for (double& x : v) x = c.b_fixed >= 0 ? c.b_fixed : x * c.b_max;
    in.b = Tensor::from_vector(in.b.shape(), v).to(c.dtype);
  }
  if (c.w_form != "none")
    in.w = random_tensor(gate_shape(c.w_form, c.HV, c.V), c.dtype, rng, [](Rng& r) { return r.uniform(); });
  if (c.h0) in.h0 = random_tensor({N, c.HV, c.K, c.V}, DType::f32, rng, [](Rng& r) { return 0.5 * r.normal(); });
  return in;
}

inline Gdn2Options make_options(const Gdn2Case& c) {
  Gdn2Options opt;
  opt.qk_l2norm = c.l2norm;
  return opt;
}

// Cotangents for a loss Σ o⊙d_o + Σ ht⊙dht.
inline std::pair<Tensor, Tensor> make_cotangents(const Gdn2Case& c, uint64_t seed) {
  Rng rng(seed);
  const int64_t N = c.seqlens.empty() ? c.B : static_cast<int64_t>(c.seqlens.size());
  auto normal = [](Rng& r) { return r.normal(); };
  return {random_tensor({c.B, c.T, c.HV, c.V}, DType::f32, rng, normal),
          random_tensor({N, c.HV, c.K, c.V}, DType::f32, rng, normal)};
}

}  // namespace gdn2::test
