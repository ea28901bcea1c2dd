// AdamW (Loshchilov & Hutter): m, v moments with bias correction; decay only on parameters marked for it.
#include "train/adamw.h"

#include <cmath>

#include "gdn2/ops/optim.h"
#include "gdn2/safetensors.h"

namespace gdn2 {

AdamW::AdamW(ParamStore& params, Options o) : params_(params), o_(o) {
  for (const Param& p : params_.all()) {
    m_.push_back(Tensor::zeros(p.spec.shape, params_.dtype(), params_.device()));
    v_.push_back(Tensor::zeros(p.spec.shape, params_.dtype(), params_.device()));
  }
}

double AdamW::clip_grad_norm(double max_norm) {
  std::vector<const Tensor*> grads;
  for (const Param& p : params_.all()) {
    GDN2_CHECK(p.grad.defined(), ValueError, "AdamW: parameter ", p.spec.name, " has no gradient");
    grads.push_back(&p.grad);
  }
  const double norm = std::sqrt(sum_squares(grads));
  grad_scale_ = max_norm > 0 && norm > max_norm && std::isfinite(norm) ? max_norm / (norm + 1e-12) : 1.0;
  return norm;
}

void AdamW::step(double lr) {
  ++t_;
  auto& ps = params_.all();
  std::vector<AdamWSlot> slots;
  for (size_t k = 0; k < ps.size(); ++k) {
    Param& p = ps[k];
    slots.push_back({&p.value, &p.grad, &m_[k], &v_[k], p.compute.defined() ? &p.compute : nullptr, p.spec.decay});
  }
  adamw_update(slots, AdamWHyper{lr, o_.beta1, o_.beta2, o_.eps, o_.weight_decay, t_, grad_scale_});
  grad_scale_ = 1.0;
}

void AdamW::save(const std::string& path) const {
  std::vector<std::pair<std::string, Tensor>> t;
  const auto& ps = params_.all();
  for (size_t k = 0; k < ps.size(); ++k) {
    t.emplace_back("m." + ps[k].spec.name, m_[k].cpu());
    t.emplace_back("v." + ps[k].spec.name, v_[k].cpu());
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
      *dst = t.to(params_.dtype()).to(params_.device());
    }
  }
  t_ = step;
}

}  // namespace gdn2
