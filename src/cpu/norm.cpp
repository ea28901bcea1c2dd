// CPU row norms: L2 norm and gated RMSNorm, forward and backward, parallel over rows.
#include "cpu/norm.h"

#include <cmath>
#include <vector>

#include "cpu/l2norm_rows.h"
#include "cpu/parallel.h"
#include "cpu/scalar_math.h"

namespace gdn2::cpu {

namespace {

template <class T>
L2NormResult l2_forward_impl(const Tensor& x_t, double eps) {
  const int64_t rows = x_t.size(0), D = x_t.size(1);
  const bool par = worth_parallel(rows * D);
  L2NormResult r{x_t.clone(), Tensor::empty({rows}, x_t.dtype())};
  T* y = r.y.data<T>();
  T* rstd = r.rstd.data<T>();
#pragma omp parallel for schedule(static) if (par)
  for (int64_t i = 0; i < rows; ++i) rstd[i] = l2norm_row(y + i * D, D, eps);
  return r;
}

template <class T>
Tensor l2_backward_impl(const Tensor& dy_t, const Tensor& y_t, const Tensor& rstd_t) {
  const int64_t rows = y_t.size(0), D = y_t.size(1);
  const bool par = worth_parallel(rows * D);
  Tensor dx_t = dy_t.clone();
  const T* y = y_t.data<T>();
  const T* rstd = rstd_t.data<T>();
  T* dx = dx_t.data<T>();
#pragma omp parallel for schedule(static) if (par)
  for (int64_t i = 0; i < rows; ++i) l2norm_row_bwd(y + i * D, rstd[i], dx + i * D, D);
  return dx_t;
}

// The per-element factors of a gated RMSNorm: w (with 1 + w when zero-centred) and act(gate) and its derivative.
template <class T>
struct RmsFactors {
  const T* weight;  // null: 1
  const T* gate;    // null: 1
  RmsNormOptions opt;

  T w(int64_t d) const {
    if (!weight) return T(1);
    return opt.zero_centred ? T(1) + weight[d] : weight[d];
  }
  T act(T z) const { return opt.gate_activation == NormGateActivation::sigmoid ? sigmoid(z) : silu(z); }
  T act_grad(T z) const {
    if (opt.gate_activation == NormGateActivation::silu) return silu_grad(z);
    const T s = sigmoid(z);
    return s * (T(1) - s);
  }
};

template <class T>
RmsNormResult rms_forward_impl(const Tensor& x_t, const Tensor& weight, const Tensor& gate, const RmsNormOptions& opt) {
  const int64_t rows = x_t.size(0), D = x_t.size(1);
  const bool par = worth_parallel(rows * D);
  RmsNormResult r{Tensor::empty({rows, D}, x_t.dtype()), Tensor::empty({rows}, x_t.dtype())};
  const RmsFactors<T> f{weight.defined() ? weight.data<T>() : nullptr, gate.defined() ? gate.data<T>() : nullptr, opt};
  const T* x = x_t.data<T>();
  T* y = r.y.data<T>();
  T* rstd = r.rstd.data<T>();
#pragma omp parallel for schedule(static) if (par)
  for (int64_t i = 0; i < rows; ++i) {
    const T* xr = x + i * D;
    T ss = T(0);
    for (int64_t d = 0; d < D; ++d) ss += xr[d] * xr[d];
    const T rs = T(1) / std::sqrt(ss / T(D) + T(opt.eps));
    rstd[i] = rs;
    for (int64_t d = 0; d < D; ++d) {
      T v = xr[d] * rs * f.w(d);
      if (f.gate) v *= f.act(f.gate[i * D + d]);
      y[i * D + d] = v;
    }
  }
  return r;
}

// With n = x·rstd, a = act(gate): dgate = dy·n·w·act'(gate), dweight = Σ_rows dy·n·a, and with dn = dy·w·a,
// dx = rstd · (dn − n · mean(dn⊙n)).
template <class T>
RmsNormGrads rms_backward_impl(const Tensor& dy_t, const Tensor& x_t, const Tensor& rstd_t, const Tensor& weight,
                               const Tensor& gate, const RmsNormOptions& opt) {
  const int64_t rows = x_t.size(0), D = x_t.size(1);
  const bool par = worth_parallel(rows * D);
  const DType dt = x_t.dtype();
  const RmsFactors<T> f{weight.defined() ? weight.data<T>() : nullptr, gate.defined() ? gate.data<T>() : nullptr, opt};
  const T* x = x_t.data<T>();
  const T* dy = dy_t.data<T>();
  const T* rstd = rstd_t.data<T>();
  RmsNormGrads g;
  g.dx = Tensor::empty({rows, D}, dt);
  T* dx = g.dx.data<T>();
  T* dgate = nullptr;
  if (gate.defined()) {
    g.dgate = Tensor::empty({rows, D}, dt);
    dgate = g.dgate.data<T>();
  }
  std::vector<T> dweight(static_cast<size_t>(weight.defined() ? D : 0));
  const int64_t width = static_cast<int64_t>(dweight.size());
  ordered_reduce<T>(rows, width, dweight.data(), par, [&](int64_t begin, int64_t end, T* part) {
    std::vector<T> dn(static_cast<size_t>(D));
    for (int64_t i = begin; i < end; ++i) {
      const T* xr = x + i * D;
      const T* dyr = dy + i * D;
      const T rs = rstd[i];
      T dot = T(0);
      for (int64_t d = 0; d < D; ++d) {
        const T n = xr[d] * rs, w = f.w(d);
        const T a = f.gate ? f.act(f.gate[i * D + d]) : T(1);
        if (dgate) dgate[i * D + d] = dyr[d] * n * w * f.act_grad(f.gate[i * D + d]);
        if (width) part[d] += dyr[d] * n * a;
        dn[d] = dyr[d] * w * a;
        dot += dn[d] * n;
      }
      dot /= T(D);
      for (int64_t d = 0; d < D; ++d) dx[i * D + d] = rs * (dn[d] - xr[d] * rs * dot);
    }
  });
  if (weight.defined()) g.dweight = Tensor::from_vector({D}, dweight);
  return g;
}

}  // namespace

L2NormResult l2_norm_forward(const Tensor& x, double eps) {
  return x.dtype() == DType::f64 ? l2_forward_impl<double>(x, eps) : l2_forward_impl<float>(x, eps);
}

Tensor l2_norm_backward(const Tensor& dy, const Tensor& y, const Tensor& rstd) {
  return y.dtype() == DType::f64 ? l2_backward_impl<double>(dy, y, rstd) : l2_backward_impl<float>(dy, y, rstd);
}

RmsNormResult rms_norm_forward(const Tensor& x, const Tensor& weight, const Tensor& gate, const RmsNormOptions& opt) {
  return x.dtype() == DType::f64 ? rms_forward_impl<double>(x, weight, gate, opt)
                                 : rms_forward_impl<float>(x, weight, gate, opt);
}

RmsNormGrads rms_norm_backward(const Tensor& dy, const Tensor& x, const Tensor& rstd, const Tensor& weight,
                               const Tensor& gate, const RmsNormOptions& opt) {
  return x.dtype() == DType::f64 ? rms_backward_impl<double>(dy, x, rstd, weight, gate, opt)
                                 : rms_backward_impl<float>(dy, x, rstd, weight, gate, opt);
}

}  // namespace gdn2::cpu
