// Parameter allocation, initialisation (fla / HF rules) and lookup.
#include "model/params.h"

#include <cmath>
#include <exception>
#include <functional>
#include <random>

#include "gdn2/ops/dense.h"

namespace gdn2 {

ParamStore::ParamStore(const ModelConfig& c, DType dtype, Device device, DType compute)
    : dtype_(dtype), compute_(compute), device_(device) {
  GDN2_CHECK(dtype == DType::f32 || dtype == DType::f64, DTypeError, "model parameters must be F32 or F64, got ",
             dtype_name(dtype));
  GDN2_CHECK(compute == dtype || (device == Device::cuda && dtype == DType::f32 &&
                                  (compute == DType::bf16 || compute == DType::f16)),
             DTypeError, "a model of ", dtype_name(dtype), " parameters on the ", device_name(device),
             " computes in ", dtype_name(dtype), (device == Device::cuda ? " (or BF16 / F16 below F32)" : ""),
             ", not ", dtype_name(compute));
  std::vector<std::string> order;  // groups in order of first appearance
  for (ParamSpec& s : model_param_specs(c)) {
    index_[s.name] = params_.size();
    if (!s.group.empty()) {
      GDN2_CHECK(s.shape.size() == 2, ValueError, "grouped parameter ", s.name, " must be a matrix");
      Group& g = groups_[s.group];
      if (g.rows.empty()) order.push_back(s.group);
      g.names.push_back(s.name);
      g.rows.push_back(s.shape[0]);
      params_.push_back({s, Tensor(), Tensor(), Tensor()});
      continue;
    }
    params_.push_back({s, Tensor::zeros(s.shape, dtype, device), Tensor(), Tensor()});
    refresh_compute(params_.back());
  }
  // Each group's matrices, and its members' values (and compute copies) as views of their rows.
  for (const std::string& name : order) {
    Group& g = groups_[name];
    int64_t rows = 0, in = -1;
    for (Param& p : params_) {
      if (p.spec.group != name) continue;
      GDN2_CHECK(in < 0 || p.spec.shape[1] == in, ValueError, "group ", name, ": ", p.spec.name, " has ",
                 p.spec.shape[1], " inputs, not ", in);
      in = p.spec.shape[1];
      rows += p.spec.shape[0];
    }
    g.value = Tensor::zeros({rows, in}, dtype, device);
    if (compute_ != dtype_) g.compute = Tensor::zeros({rows, in}, compute_, device);
    int64_t at = 0;
    for (Param& p : params_) {
      if (p.spec.group != name) continue;
      const int64_t n = p.spec.shape[0];
      p.value = g.value.slice0(at, at + n);
      if (g.compute.defined()) p.compute = g.compute.slice0(at, at + n);
      at += n;
    }
  }
}

void ParamStore::write_into(Tensor& dst, const Tensor& src) {
  GDN2_CHECK(src.numel() == dst.numel() && src.dtype() == dst.dtype(), ShapeError, "write_into: ", src.describe(),
             " into ", dst.describe());
  if (dst.nbytes() > 0) copy_rows(dst, 0, dst.nbytes(), src, 0, src.nbytes(), dst.nbytes(), 1);
}

const ParamStore::Group& ParamStore::group(const std::string& name) const {
  const auto it = groups_.find(name);
  GDN2_CHECK(it != groups_.end(), ValueError, "the model has no parameter group '", name, "'");
  return it->second;
}

const Tensor& ParamStore::group_weight(const std::string& name) const {
  const Group& g = group(name);
  return g.compute.defined() ? g.compute : g.value;
}

const std::vector<std::string>& ParamStore::group_names(const std::string& name) const { return group(name).names; }

const std::vector<int64_t>& ParamStore::group_rows(const std::string& name) const { return group(name).rows; }

void ParamStore::set(Param& p, const Tensor& t) {
  GDN2_CHECK(t.defined() && t.numel() == shape_numel(p.spec.shape), ShapeError, "parameter '", p.spec.name, "' is ",
             shape_str(p.spec.shape), ", got ", t.describe());
  Tensor v = t.to(dtype_);  // always a copy: t may be a read-only view of a file
  if (v.device() != device_) v = v.to(device_);
  if (p.spec.group.empty())
    p.value = v.reshape(p.spec.shape);
  else
    write_into(p.value, v);  // a view of the group's matrix
  refresh_compute(p);
}

void ParamStore::refresh_compute(Param& p) {
  const std::string& n = p.spec.name;
  const bool linear = p.spec.shape.size() == 2 || (n.size() > 5 && n.compare(n.size() - 5, 5, ".bias") == 0);
  if (compute_ == dtype_ || !linear) return;
  if (p.spec.group.empty())
    p.compute = p.value.to(compute_);
  else
    write_into(p.compute, p.value.to(compute_));
}

void ParamStore::init(uint64_t seed, double initializer_range, int64_t num_layers) {
  // Parameters are drawn in parallel (each from its own stream, so the values do not depend on the thread count) and
  // stored one at a time; an error (device memory) is rethrown after the loop.
  std::exception_ptr failure;
#pragma omp parallel for schedule(dynamic)
  for (size_t i = 0; i < params_.size(); ++i) {
    Param& p = params_[i];
    std::mt19937_64 rng(seed ^ (std::hash<std::string>{}(p.spec.name) * 0x9E3779B97F4A7C15ull));
    std::normal_distribution<double> normal(0.0, 1.0);
    std::uniform_real_distribution<double> uniform(0.0, 1.0);
    const int64_t n = p.value.numel();
    std::vector<double> v(static_cast<size_t>(n));
    const double residual_std = initializer_range / std::sqrt(2.0 * static_cast<double>(num_layers));
    const double conv_bound = 1.0 / std::sqrt(static_cast<double>(p.spec.shape.back()));
    for (double& x : v) {
      switch (p.spec.init) {
        case ParamInit::normal: x = initializer_range * normal(rng); break;
        case ParamInit::normal_residual: x = residual_std * normal(rng); break;
        case ParamInit::zeros: x = 0; break;
        case ParamInit::ones: x = 1; break;
        case ParamInit::conv: x = conv_bound * (2 * uniform(rng) - 1); break;
        case ParamInit::a_log: x = std::log(1.0 + 15.0 * uniform(rng)); break;
        case ParamInit::dt_bias: {
          const double dt = std::max(1e-4, std::exp(std::log(1e-3) + uniform(rng) * (std::log(1e-1) - std::log(1e-3))));
          x = dt + std::log(-std::expm1(-dt));  // inverse softplus
          break;
        }
      }
    }
    const Tensor t = Tensor::from_vector(p.spec.shape, v).to(dtype_);
    v = std::vector<double>();
#pragma omp critical(gdn2_param_init)
    {
      try {
        if (!failure) set(p, t);
      } catch (...) {
        failure = std::current_exception();
      }
    }
  }
  if (failure) std::rethrow_exception(failure);
}

Param& ParamStore::at(const std::string& name) {
  const auto it = index_.find(name);
  GDN2_CHECK(it != index_.end(), ValueError, "the model has no parameter '", name, "'");
  return params_[it->second];
}

const Param& ParamStore::at(const std::string& name) const { return const_cast<ParamStore*>(this)->at(name); }

Tensor& Param::grad_to_add() {
  if (grad_stale) {
    grad.zero_();
    grad_stale = false;
  }
  return grad;
}

void Param::add_grad(const Tensor& g) {
  if (grad_stale && g.defined() && g.numel() == grad.numel() && g.dtype() == grad.dtype() &&
      g.device() == grad.device()) {
    if (grad.nbytes() > 0) copy_rows(grad, 0, grad.nbytes(), g, 0, g.nbytes(), grad.nbytes(), 1);
    grad_stale = false;
    return;
  }
  add_inplace(grad_to_add(), g);
}

Tensor* Param::grad_to_write(bool* overwrite) {
  *overwrite = grad_stale;
  grad_stale = false;
  return &grad;
}

Tensor param_linear_backward(const Tensor& dy, const Tensor& x, Param& weight, Param* bias, Tensor* dx_into) {
  bool overwrite = false;
  Tensor* dw = weight.grad_to_write(&overwrite);
  return linear_backward(dy, x, weight.w(), dw, bias != nullptr ? &bias->grad_to_add() : nullptr, dx_into, overwrite);
}

void ParamStore::zero_grad() {
  for (Param& p : params_) {
    if (p.grad.defined())
      p.grad_stale = true;
    else
      p.grad = Tensor::zeros(p.spec.shape, dtype_, device_);
  }
}

void ParamStore::settle_grads() {
  for (Param& p : params_) p.grad_to_add();
}

}  // namespace gdn2
