// Seeded random GDN-2 problems: realistic decays and gates, unit or raw keys, every collapse mode.
#include "gdn2/ops/gdn2_random.h"

#include <cmath>
#include <numeric>
#include <random>

namespace gdn2 {

namespace {

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

template <class F>
Tensor random_tensor(const Shape& shape, DType dt, F&& f) {
  std::vector<float> v(static_cast<size_t>(shape_numel(shape)));
  for (float& x : v) x = static_cast<float>(f());
  return dt == DType::f32 ? Tensor::from_vector(shape, v) : Tensor::from_vector(shape, v).to(dt);
}

void normalise_rows(std::vector<float>& v, int64_t dim) {
  for (size_t r = 0; r < v.size(); r += static_cast<size_t>(dim)) {
    double ss = 0;
    for (int64_t d = 0; d < dim; ++d) ss += static_cast<double>(v[r + d]) * v[r + d];
    const double inv = 1.0 / std::sqrt(ss);
    for (int64_t d = 0; d < dim; ++d) v[r + d] = static_cast<float>(v[r + d] * inv);
  }
}

}  // namespace

int64_t Gdn2RandomSpec::tokens() const {
  return seqlens.empty() ? B * T : std::accumulate(seqlens.begin(), seqlens.end(), int64_t{0});
}

std::string Gdn2RandomSpec::name() const {
  std::string s = "B" + std::to_string(B) + "T" + std::to_string(T) + "H" + std::to_string(H) + "HV" +
                  std::to_string(HV) + "K" + std::to_string(K) + "V" + std::to_string(V);
  if (!seqlens.empty()) s += "_varlen" + std::to_string(seqlens.size());
  s += "_g" + g_form + "_b" + b_form + "_w" + w_form;
  if (g_range == GateRange::near_zero) s += "_g0";
  if (g_range == GateRange::very_negative) s += "_gneg";
  if (b_fixed >= 0) s += "_bfix" + std::to_string(static_cast<int>(b_fixed));
  if (b_max != 1.0) s += "_negeig";
  if (!h0) s += "_noh0";
  if (!l2norm) s += "_unitqk";
  if (scale != 0) s += "_scale" + std::to_string(static_cast<int>(scale * 1000)) + "e-3";
  if (dtype != DType::f32) s += std::string("_") + std::string(dtype_name(dtype));
  return s;
}

Gdn2Inputs gdn2_random_inputs(const Gdn2RandomSpec& spec) {
  Rng rng(spec.seed);
  Gdn2Inputs in;
  const int64_t B = spec.seqlens.empty() ? spec.B : 1, T = spec.seqlens.empty() ? spec.T : spec.tokens();
  if (!spec.seqlens.empty()) {
    std::vector<int64_t> cu{0};
    for (int64_t l : spec.seqlens) cu.push_back(cu.back() + l);
    in.cu_seqlens = Tensor::from_vector<int64_t>({static_cast<int64_t>(cu.size())}, cu);
  }
  auto normal = [&] { return rng.normal(); };
  auto uniform = [&] { return rng.uniform(); };
  for (Tensor* t : {&in.q, &in.k}) {
    std::vector<float> v(static_cast<size_t>(B * T * spec.H * spec.K));
    for (float& x : v) x = static_cast<float>(rng.normal());
    if (!spec.l2norm) normalise_rows(v, spec.K);  // the recurrence expects unit keys
    *t = Tensor::from_vector({B, T, spec.H, spec.K}, v).to(spec.dtype);
  }
  in.v = random_tensor({B, T, spec.HV, spec.V}, spec.dtype, normal);
  auto gate_shape = [&](const std::string& form, int64_t heads, int64_t dim) -> Shape {
    GDN2_CHECK(form == "channel" || form == "head", ValueError, "gate form must be channel, head or none, got ", form);
    return form == "channel" ? Shape{B, T, heads, dim} : Shape{B, T, heads};
  };
  const int64_t gh = spec.g_heads ? spec.g_heads : spec.H, bh = spec.b_heads ? spec.b_heads : spec.H;
  in.g_log = random_tensor(gate_shape(spec.g_form, gh, spec.K), spec.dtype, [&] {
    switch (spec.g_range) {
      case GateRange::near_zero: return -1e-4 * rng.uniform();
      case GateRange::very_negative: return -(5.0 + 30.0 * rng.uniform());
      default: return -std::exp(-2.0 + 1.5 * rng.normal());
    }
  });
  if (spec.b_form != "none")
    in.b = random_tensor(gate_shape(spec.b_form, bh, spec.K), spec.dtype,
                         [&] { return spec.b_fixed >= 0 ? (rng.uniform(), spec.b_fixed) : spec.b_max * rng.uniform(); });
  if (spec.w_form != "none") in.w = random_tensor(gate_shape(spec.w_form, spec.HV, spec.V), spec.dtype, uniform);
  if (spec.h0)
    in.h0 = random_tensor({spec.sequences(), spec.HV, spec.K, spec.V}, DType::f32, [&] { return 0.5 * rng.normal(); });
  return in;
}

Gdn2Options gdn2_random_options(const Gdn2RandomSpec& spec) {
  Gdn2Options opt;
  opt.qk_l2norm = spec.l2norm;
  opt.scale = spec.scale;
  return opt;
}

std::pair<Tensor, Tensor> gdn2_random_cotangents(const Gdn2RandomSpec& spec, uint64_t seed) {
  Rng rng(seed);
  auto normal = [&] { return rng.normal(); };
  const int64_t B = spec.seqlens.empty() ? spec.B : 1, T = spec.seqlens.empty() ? spec.T : spec.tokens();
  Tensor d_o = random_tensor({B, T, spec.HV, spec.V}, DType::f32, normal);
  Tensor dht = random_tensor({spec.sequences(), spec.HV, spec.K, spec.V}, DType::f32, normal);
  return {d_o, dht};
}

}  // namespace gdn2
