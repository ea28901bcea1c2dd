// CPU kernels for linear layers and the fused LM-head cross-entropy.
#include "cpu/dense.h"

#include <cmath>
#include <limits>
#include <vector>

#include "cpu/exp_approx.h"
#include "cpu/matmul.h"
#include "cpu/parallel.h"

namespace gdn2::cpu {

template <class Real>
void linear_forward(const Real* x, const Real* w, const Real* bias, Real* y, int64_t rows, int64_t in, int64_t out,
                    bool y_add) {
  matmul<Real>(false, true, rows, out, in, Real(1), x, in, w, in, Real(y_add ? 1 : 0), y, out);
  if (bias != nullptr) {
#pragma omp parallel for schedule(static) if (worth_parallel(rows * out))
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t o = 0; o < out; ++o) y[r * out + o] += bias[o];
  }
}

template <class Real>
void linear_backward(const Real* dy, const Real* x, const Real* w, Real* dx, Real* dw, Real* db, int64_t rows,
                     int64_t in, int64_t out, bool dx_add, bool dw_add) {
  matmul<Real>(false, false, rows, in, out, Real(1), dy, out, w, in, Real(dx_add ? 1 : 0), dx, in);  // dx (+)= dy W
  if (dw != nullptr)  // dw (+)= dy^T x
    matmul<Real>(true, false, out, in, rows, Real(1), dy, out, x, in, Real(dw_add ? 1 : 0), dw, in);
  if (db != nullptr) {
    std::vector<Real> sum(static_cast<size_t>(out));
    ordered_reduce<Real>(rows, out, sum.data(), worth_parallel(rows * out), [&](int64_t r0, int64_t r1, Real* acc) {
      for (int64_t r = r0; r < r1; ++r)
        for (int64_t o = 0; o < out; ++o) acc[o] += dy[r * out + o];
    });
    for (int64_t o = 0; o < out; ++o) db[o] += sum[o];
  }
}

template <class Real>
LmLoss lm_head_cross_entropy(const Real* h, const Real* W, const int32_t* targets, int64_t N, int64_t D, int64_t V,
                             bool want_grad, Real* dW, double grad_scale, Tensor& dh) {
  LmLoss r;
  for (int64_t i = 0; i < N; ++i) r.count += targets[i] >= 0 ? 1 : 0;
  if (want_grad) dh = Tensor::zeros({N, D}, dtype_of<Real>());
  if (r.count == 0) return r;
  const double inv_count = 1.0 / static_cast<double>(r.count);
  constexpr int64_t kBlock = 128;
  std::vector<Real> logits(static_cast<size_t>(kBlock * V));
  std::vector<double> row_loss(static_cast<size_t>(kBlock));
  double total = 0;
  for (int64_t r0 = 0; r0 < N; r0 += kBlock) {
    const int64_t nb = std::min(kBlock, N - r0);
    matmul<Real>(false, true, nb, V, D, Real(1), h + r0 * D, D, W, D, Real(0), logits.data(), V);
#pragma omp parallel for schedule(static) if (worth_parallel(nb * V * 8))
    for (int64_t i = 0; i < nb; ++i) {
      Real* z = logits.data() + i * V;
      const int32_t t = targets[r0 + i];
      Real mx = -std::numeric_limits<Real>::infinity();
      for (int64_t v = 0; v < V; ++v) mx = std::max(mx, z[v]);
      const double zt = t >= 0 ? static_cast<double>(z[t]) : 0.0;
      // z <- exp(z - max) once (vectorised for float), then the loss and, in place, the softmax gradient.
      exp_shifted(z, V, mx);
      double sum = 0;
      for (int64_t v = 0; v < V; ++v) sum += z[v];
      row_loss[static_cast<size_t>(i)] = t >= 0 ? static_cast<double>(mx) + std::log(sum) - zt : 0.0;
      if (!want_grad) continue;
      // dlogits = (softmax - onehot) / count · grad_scale.
      const double s = t >= 0 ? inv_count * grad_scale : 0.0;
      const Real f = static_cast<Real>(s / sum);
      for (int64_t v = 0; v < V; ++v) z[v] *= f;
      if (t >= 0) z[t] -= static_cast<Real>(s);
    }
    for (int64_t i = 0; i < nb; ++i) total += row_loss[static_cast<size_t>(i)];
    if (want_grad) {
      Real* dhp = dh.data<Real>();
      matmul<Real>(false, false, nb, D, V, Real(1), logits.data(), V, W, D, Real(0), dhp + r0 * D, D);
      if (dW != nullptr) matmul<Real>(true, false, V, D, nb, Real(1), logits.data(), V, h + r0 * D, D, Real(1), dW, D);
    }
  }
  r.loss = total * inv_count;
  return r;
}

template void linear_forward<float>(const float*, const float*, const float*, float*, int64_t, int64_t, int64_t, bool);
template void linear_forward<double>(const double*, const double*, const double*, double*, int64_t, int64_t, int64_t,
                                     bool);
template void linear_backward<float>(const float*, const float*, const float*, float*, float*, float*, int64_t, int64_t,
                                     int64_t, bool, bool);
template void linear_backward<double>(const double*, const double*, const double*, double*, double*, double*, int64_t,
                                      int64_t, int64_t, bool, bool);
template LmLoss lm_head_cross_entropy<float>(const float*, const float*, const int32_t*, int64_t, int64_t, int64_t,
                                             bool, float*, double, Tensor&);
template LmLoss lm_head_cross_entropy<double>(const double*, const double*, const int32_t*, int64_t, int64_t, int64_t,
                                              bool, double*, double, Tensor&);

}  // namespace gdn2::cpu
