// Optimizer ops: shape contracts, the CPU loops, and dispatch of CUDA tensors to the CUDA backend.
#include "gdn2/ops/optim.h"

#include <cmath>

#include "cpu/parallel.h"
#ifdef GDN2_WITH_CUDA
#include "cuda/optim.h"
#endif

namespace gdn2 {

namespace {

template <class F>
auto by_dtype(DType dt, F&& f) {
  return dt == DType::f64 ? f(double{}) : f(float{});
}

}  // namespace

double sum_squares(const std::vector<const Tensor*>& tensors) {
  if (tensors.empty()) return 0;
  const Device dev = tensors[0]->device();
  for (const Tensor* t : tensors) {
    GDN2_CHECK(t != nullptr && t->defined() && dtype_is_float(t->dtype()), DTypeError,
               "sum_squares: every tensor must be a defined float tensor");
    GDN2_CHECK(t->device() == dev, ShapeError, "sum_squares: tensors on different devices (", t->describe(), ")");
  }
  if (dev == Device::cuda) {
#ifdef GDN2_WITH_CUDA
    return cuda::sum_squares(tensors);
#else
    GDN2_THROW(UnsupportedError, "sum_squares: CUDA tensors need a build with the CUDA backend");
#endif
  }
  double total = 0;
  for (const Tensor* t : tensors) {
    const Tensor x = t->dtype() == DType::f32 || t->dtype() == DType::f64 ? *t : t->to(DType::f32);
    by_dtype(x.dtype(), [&](auto r) {
      using R = decltype(r);
      const R* p = x.data<R>();
      double s = 0;
      for (int64_t i = 0; i < x.numel(); ++i) s += static_cast<double>(p[i]) * p[i];
      total += s;
      return 0;
    });
  }
  return total;
}

namespace {

void check_slot(const AdamWSlot& s, Device dev) {
  const char* op = "adamw_update";
  GDN2_CHECK(s.value && s.grad && s.m && s.v && s.value->defined() && s.grad->defined() && s.m->defined() &&
                 s.v->defined(),
             ValueError, op, ": value, grad, m and v are required");
  const Tensor& value = *s.value;
  GDN2_CHECK(value.device() == dev, ShapeError, op, ": ", value.describe(), " is on another device than the others");
  for (const Tensor* t : {s.grad, static_cast<const Tensor*>(s.m), static_cast<const Tensor*>(s.v)}) {
    GDN2_CHECK(t->shape() == value.shape(), ShapeError, op, ": ", t->describe(), " does not match value ",
               value.describe());
    GDN2_CHECK(t->device() == value.device(), ShapeError, op, ": ", t->describe(), " is on another device than value");
  }
  GDN2_CHECK(value.dtype() == DType::f32 || (value.dtype() == DType::f64 && value.is_cpu()), DTypeError, op,
             ": value must be F32 (or F64 on the CPU), got ", value.describe());
  for (const Tensor* t : {s.grad, static_cast<const Tensor*>(s.m), static_cast<const Tensor*>(s.v)})
    GDN2_CHECK(t->dtype() == value.dtype(), DTypeError, op, ": ", t->describe(), " must have value's dtype");
  if (s.compute != nullptr) {
    const Tensor& c = *s.compute;
    GDN2_CHECK(c.shape() == value.shape() && c.device() == value.device() &&
                   (c.dtype() == DType::bf16 || c.dtype() == DType::f16 || c.dtype() == DType::f32),
               ShapeError, op, ": compute copy ", c.describe(), " must be BF16, F16 or F32 like value ",
               value.describe());
  }
}

void adamw_cpu(const AdamWSlot& s, const AdamWHyper& h) {
  const double c1 = 1 - std::pow(h.beta1, static_cast<double>(h.step));
  const double c2 = 1 - std::pow(h.beta2, static_cast<double>(h.step));
  const double wd = s.decay ? h.weight_decay : 0.0;
  by_dtype(s.value->dtype(), [&](auto r) {
    using R = decltype(r);
    R* w = s.value->data<R>();
    const R* g = s.grad->data<R>();
    R* mp = s.m->data<R>();
    R* vp = s.v->data<R>();
    const int64_t n = s.value->numel();
#pragma omp parallel for schedule(static) if (cpu::worth_parallel(n * 8))
    for (int64_t i = 0; i < n; ++i) {
      const double gi = h.grad_scale * g[i];
      mp[i] = static_cast<R>(h.beta1 * mp[i] + (1 - h.beta1) * gi);
      vp[i] = static_cast<R>(h.beta2 * vp[i] + (1 - h.beta2) * gi * gi);
      const double update = (mp[i] / c1) / (std::sqrt(vp[i] / c2) + h.eps) + wd * w[i];
      w[i] = static_cast<R>(w[i] - h.lr * update);
    }
    return 0;
  });
  if (s.compute != nullptr) *s.compute = s.value->to(s.compute->dtype());
}

}  // namespace

void adamw_update(const std::vector<AdamWSlot>& slots, const AdamWHyper& h) {
  const char* op = "adamw_update";
  GDN2_CHECK(h.step >= 1 && std::isfinite(h.lr) && h.beta1 >= 0 && h.beta1 < 1 && h.beta2 >= 0 && h.beta2 < 1 &&
                 h.eps >= 0 && std::isfinite(h.grad_scale),
             ValueError, op, ": bad hyperparameters (step ", h.step, ", lr ", h.lr, ", betas ", h.beta1, "/",
             h.beta2, ", eps ", h.eps, ")");
  if (slots.empty()) return;
  GDN2_CHECK(slots[0].value != nullptr, ValueError, op, ": value, grad, m and v are required");
  const Device dev = slots[0].value->device();
  for (const AdamWSlot& s : slots) check_slot(s, dev);
  if (dev == Device::cuda) {
#ifdef GDN2_WITH_CUDA
    cuda::adamw_update(slots, h);
    return;
#else
    GDN2_THROW(UnsupportedError, op, ": CUDA tensors need a build with the CUDA backend");
#endif
  }
  for (const AdamWSlot& s : slots) adamw_cpu(s, h);
}

void adamw_update(Tensor& value, const Tensor& grad, Tensor& m, Tensor& v, const AdamWHyper& h, Tensor* compute) {
  adamw_update({AdamWSlot{&value, &grad, &m, &v, compute, true}}, h);
}

}  // namespace gdn2
