// AdamW (Loshchilov & Hutter): m, v moments with bias correction; decay only on parameters marked for it.
#include "train/adamw.h"

#include <cmath>

#include "cpu/parallel.h"
#include "gdn2/safetensors.h"

namespace gdn2 {

AdamW::AdamW(ParamStore& params, Options o) : params_(params), o_(o) {
  for (const Param& p : params_.all()) {
    m_.push_back(Tensor::zeros(p.spec.shape, params_.dtype()));
    v_.push_back(Tensor::zeros(p.spec.shape, params_.dtype()));
  }
}

namespace {
template <class F>
auto dispatch(DType dt, F&& f) {
  return dt == DType::f64 ? f(double{}) : f(float{});
}
}  // namespace

double AdamW::clip_grad_norm(double max_norm) {
  double ss = 0;
  for (const Param& p : params_.all()) {
    GDN2_CHECK(p.grad.defined(), ValueError, "AdamW: parameter ", p.spec.name, " has no gradient");
    dispatch(params_.dtype(), [&](auto r) {
      using R = decltype(r);
      const R* g = p.grad.data<R>();
      double s = 0;
      for (int64_t i = 0; i < p.grad.numel(); ++i) s += static_cast<double>(g[i]) * g[i];
      ss += s;
      return 0;
    });
  }
  const double norm = std::sqrt(ss);
  if (max_norm > 0 && norm > max_norm && std::isfinite(norm)) {
    const double s = max_norm / (norm + 1e-12);
    for (Param& p : params_.all()) {
      dispatch(params_.dtype(), [&](auto r) {
        using R = decltype(r);
        R* g = p.grad.data<R>();
        for (int64_t i = 0; i < p.grad.numel(); ++i) g[i] = static_cast<R>(g[i] * s);
        return 0;
      });
    }
  }
  return norm;
}

void AdamW::step(double lr) {
  ++t_;
  const double bc1 = 1 - std::pow(o_.beta1, static_cast<double>(t_)), bc2 = 1 - std::pow(o_.beta2, static_cast<double>(t_));
  auto& ps = params_.all();
  for (size_t k = 0; k < ps.size(); ++k) {
    Param& p = ps[k];
    const double wd = p.spec.decay ? o_.weight_decay : 0.0;
    dispatch(params_.dtype(), [&](auto r) {
      using R = decltype(r);
      R* w = p.value.data<R>();
      const R* g = p.grad.data<R>();
      R* m = m_[k].data<R>();
      R* v = v_[k].data<R>();
      const int64_t n = p.value.numel();
#pragma omp parallel for schedule(static) if (cpu::worth_parallel(n * 8))
      for (int64_t i = 0; i < n; ++i) {
        m[i] = static_cast<R>(o_.beta1 * m[i] + (1 - o_.beta1) * g[i]);
        v[i] = static_cast<R>(o_.beta2 * v[i] + (1 - o_.beta2) * static_cast<double>(g[i]) * g[i]);
        const double update = (m[i] / bc1) / (std::sqrt(v[i] / bc2) + o_.eps) + wd * w[i];
        w[i] = static_cast<R>(w[i] - lr * update);
      }
      return 0;
    });
  }
}

void AdamW::save(const std::string& path) const {
  std::vector<std::pair<std::string, Tensor>> t;
  const auto& ps = params_.all();
  for (size_t k = 0; k < ps.size(); ++k) {
    t.emplace_back("m." + ps[k].spec.name, m_[k]);
    t.emplace_back("v." + ps[k].spec.name, v_[k]);
  }
  safetensors_write(path, t, {{"step", std::to_string(t_)}, {"format", "gdn2-adamw-v1"}});
}

void AdamW::load(const std::string& path) {
  const SafetensorsFile f = SafetensorsFile::open(path);
  const auto& meta = f.metadata();
  GDN2_CHECK(meta.count("step") && meta.count("format") && meta.at("format") == "gdn2-adamw-v1", FormatError, path,
             ": not a gdn2 optimizer state");
  int64_t step = 0;
  try {
    step = std::stoll(meta.at("step"));
  } catch (const std::exception&) {
    GDN2_THROW(FormatError, path, ": bad step '", meta.at("step"), "'");
  }
  GDN2_CHECK(step >= 0, FormatError, path, ": negative step");
  const auto& ps = params_.all();
  for (size_t k = 0; k < ps.size(); ++k) {
    for (auto [prefix, dst] : {std::pair{"m.", &m_[k]}, {"v.", &v_[k]}}) {
      const std::string name = prefix + ps[k].spec.name;
      GDN2_CHECK(f.contains(name), FormatError, path, ": no tensor '", name, "'");
      const Tensor t = f.get(name);
      GDN2_CHECK(t.shape() == ps[k].spec.shape, FormatError, path, ": '", name, "' is ", t.describe());
      *dst = t.to(params_.dtype());
    }
  }
  t_ = step;
}

}  // namespace gdn2
