// CPU decay gate g = −exp(A_log) · softplus(f + dt_bias), forward and backward, formed in log space to stay finite.
#include "cpu/decay_gate.h"

#include <cmath>
#include <vector>

#include "cpu/parallel.h"
#include "cpu/scalar_math.h"

namespace gdn2::cpu {

namespace {

// g = −exp(A + log softplus(x)): no inf·0 when A is huge and softplus(x) underflows.
template <class T>
T gate_value(T A, T x) {
  return -std::exp(A + log_softplus(x));
}

// dg/dx = −exp(A) · sigmoid(x) = −exp(A + log sigmoid(x)).
template <class T>
T gate_slope(T A, T x) {
  return -std::exp(A + log_sigmoid(x));
}

template <class T>
Tensor forward_impl(const Tensor& f_t, const Tensor& A_t, const Tensor& bias_t, int64_t K) {
  const int64_t rows = f_t.size(0), HK = f_t.size(1);
  const bool par = worth_parallel(rows * HK * 16);  // exp and log per element
  Tensor g_t = Tensor::empty({rows, HK}, f_t.dtype());
  const T* f = f_t.data<T>();
  const T* A = A_t.data<T>();
  const T* bias = bias_t.defined() ? bias_t.data<T>() : nullptr;
  T* g = g_t.data<T>();
#pragma omp parallel for schedule(static) if (par)
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < HK; ++j) {
      const T x = f[i * HK + j] + (bias ? bias[j] : T(0));
      g[i * HK + j] = gate_value(A[j / K], x);
    }
  return g_t;
}

// df = dg · dg/dx; ddt_bias = Σ_rows df; dA_log[h] = Σ dg · g over head h's channels (dg/dA_log = g).
template <class T>
DecayGateGrads backward_impl(const Tensor& dg_t, const Tensor& f_t, const Tensor& A_t, const Tensor& bias_t,
                             int64_t K) {
  const int64_t rows = f_t.size(0), HK = f_t.size(1), H = A_t.size(0);
  const bool par = worth_parallel(rows * HK * 16);  // exp and log per element
  const DType dt = f_t.dtype();
  const T* dg = dg_t.data<T>();
  const T* f = f_t.data<T>();
  const T* A = A_t.data<T>();
  const T* bias = bias_t.defined() ? bias_t.data<T>() : nullptr;
  DecayGateGrads out;
  out.df = Tensor::empty({rows, HK}, dt);
  T* df = out.df.data<T>();
  // Reduced per head, then per channel: [dA_log (H) | ddt_bias (H·K, when dt_bias is defined)].
  const int64_t width = H + (bias ? HK : 0);
  std::vector<T> red(static_cast<size_t>(width));
  ordered_reduce<T>(rows, width, red.data(), par, [&](int64_t begin, int64_t end, T* part) {
    for (int64_t i = begin; i < end; ++i)
      for (int64_t j = 0; j < HK; ++j) {
        const T a = A[j / K], x = f[i * HK + j] + (bias ? bias[j] : T(0)), d = dg[i * HK + j];
        const T dx = mul_zero_safe(d, gate_slope(a, x));
        df[i * HK + j] = dx;
        part[j / K] += mul_zero_safe(d, gate_value(a, x));
        if (bias) part[H + j] += dx;
      }
  });
  out.dA_log = Tensor::from_vector({H}, std::vector<T>(red.begin(), red.begin() + H));
  if (bias) out.ddt_bias = Tensor::from_vector({HK}, std::vector<T>(red.begin() + H, red.end()));
  return out;
}

}  // namespace

Tensor decay_gate_forward(const Tensor& f, const Tensor& A_log, const Tensor& dt_bias, int64_t head_dim) {
  return f.dtype() == DType::f64 ? forward_impl<double>(f, A_log, dt_bias, head_dim)
                                 : forward_impl<float>(f, A_log, dt_bias, head_dim);
}

DecayGateGrads decay_gate_backward(const Tensor& dg, const Tensor& f, const Tensor& A_log, const Tensor& dt_bias,
                                   int64_t head_dim) {
  return f.dtype() == DType::f64 ? backward_impl<double>(dg, f, A_log, dt_bias, head_dim)
                                 : backward_impl<float>(dg, f, A_log, dt_bias, head_dim);
}

}  // namespace gdn2::cpu
