// The chunk kernel of the CPU GDN-2 WY form (see gdn2_chunk.h for the math), float and double.
#include "cpu/gdn2_chunk.h"

#include <algorithm>
#include <cmath>

#include "cpu/gemm.h"

namespace gdn2::cpu {

namespace {

// Dot product with 16 independent partial sums, so that it vectorises without -ffast-math.
template <class Real>
inline Real dot(const Real* a, const Real* b, int64_t n) {
  constexpr int64_t W = 16;
  Real acc[W] = {};
  int64_t i = 0;
  for (; i + W <= n; i += W)
    for (int64_t l = 0; l < W; ++l) acc[l] += a[i + l] * b[i + l];
  Real s = 0;
  for (; i < n; ++i) s += a[i] * b[i];
  for (int64_t l = 0; l < W; ++l) s += acc[l];
  return s;
}

template <class Real>
inline void axpy(Real alpha, const Real* x, Real* y, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) y[i] += alpha * x[i];
}

// R <- (I + T)^-1 R for strictly lower T [L, L] (leading dim ldt) and R [L, D]: forward substitution.
template <class Real>
void solve_unit_lower(const Real* T, int64_t ldt, int64_t L, Real* R, int64_t D) {
  for (int64_t i = 1; i < L; ++i)
    for (int64_t j = 0; j < i; ++j) {
      const Real t = T[i * ldt + j];
      if (t != Real(0)) axpy(-t, R + j * D, R + i * D, D);
    }
}

// R <- (I + T)^-T R: backward substitution with the transpose.
template <class Real>
void solve_unit_lower_transposed(const Real* T, int64_t ldt, int64_t L, Real* R, int64_t D) {
  for (int64_t i = L - 1; i >= 0; --i)
    for (int64_t j = i + 1; j < L; ++j) {
      const Real t = T[j * ldt + i];
      if (t != Real(0)) axpy(-t, R + j * D, R + i * D, D);
    }
}

}  // namespace

template <class Real>
ChunkKernel<Real>::ChunkKernel(int64_t chunk, int64_t K, int64_t V, Real scale) : C_(chunk), K_(K), V_(V), scale_(scale) {
  const size_t ck = static_cast<size_t>(C_ * K_), cv = static_cast<size_t>(C_ * V_), cc = static_cast<size_t>(C_ * C_);
  for (auto* b : {&qs_, &eg_, &gam_, &rev_, &kt_, &bk_, &bkg_, &qg_, &w_, &km_}) b->resize(ck);
  for (auto* b : {&xw_, &u_, &vn_}) b->resize(cv);
  t_.resize(cc);
  p_.resize(cc);
  gam_last_.resize(static_cast<size_t>(K_));
}

template <class Real>
void ChunkKernel<Real>::prepare(const TokenRows<Real>& x, int64_t L) {
  x_ = &x;
  L_ = L;
  const int64_t K = K_, V = V_, C = C_;
  const Real* q = x.q.data();
  const Real* k = x.k.data();
  for (int64_t i = 0; i < L * K; ++i) {
    qs_[i] = scale_ * q[i];
    eg_[i] = std::exp(x.g[i]);
    bk_[i] = x.b[i] * k[i];
  }
  for (int64_t i = 0; i < L * V; ++i) xw_[i] = x.w[i] * x.v[i];
  // Γ_i = Π_{t<=i} exp(g_t); rev_i = exp(G_last - G_i) = Π_{t>i} exp(g_t).
  std::copy(eg_.begin(), eg_.begin() + K, gam_.begin());
  for (int64_t i = 1; i < L; ++i)
    for (int64_t d = 0; d < K; ++d) gam_[i * K + d] = gam_[(i - 1) * K + d] * eg_[i * K + d];
  std::fill(rev_.begin() + (L - 1) * K, rev_.begin() + L * K, Real(1));
  for (int64_t i = L - 2; i >= 0; --i)
    for (int64_t d = 0; d < K; ++d) rev_[i * K + d] = rev_[(i + 1) * K + d] * eg_[(i + 1) * K + d];
  std::copy(gam_.begin() + (L - 1) * K, gam_.begin() + L * K, gam_last_.begin());
  for (int64_t i = 0; i < L * K; ++i) {
    kt_[i] = k[i] * rev_[i];
    bkg_[i] = bk_[i] * gam_[i];
    qg_[i] = qs_[i] * gam_[i];
  }
  // Decayed pair scores: km_j holds k_j ⊙ exp(G_i - G_j) for the current row i.
  std::fill(t_.begin(), t_.end(), Real(0));
  std::fill(p_.begin(), p_.end(), Real(0));
  for (int64_t i = 0; i < L; ++i) {
    const Real* e = &eg_[i * K];
    for (int64_t j = 0; j < i; ++j) {
      Real* kmj = &km_[j * K];
#pragma omp simd
      for (int64_t d = 0; d < K; ++d) kmj[d] *= e[d];
    }
    std::copy(k + i * K, k + (i + 1) * K, km_.begin() + i * K);
    for (int64_t j = 0; j < i; ++j) t_[i * C + j] = dot(&bk_[i * K], &km_[j * K], K);
    for (int64_t j = 0; j < i + 1; ++j) p_[i * C + j] = dot(&qs_[i * K], &km_[j * K], K);
  }
  std::copy(bkg_.begin(), bkg_.begin() + L * K, w_.begin());
  std::copy(xw_.begin(), xw_.begin() + L * V, u_.begin());
  solve_unit_lower(t_.data(), C, L, w_.data(), K);
  solve_unit_lower(t_.data(), C, L, u_.data(), V);
}

template <class Real>
void ChunkKernel<Real>::forward(Real* S, Real* O) {
  const int64_t K = K_, V = V_, C = C_, L = L_;
  std::copy(u_.begin(), u_.begin() + L * V, vn_.begin());
  gemm<Real>(false, false, L, V, K, Real(-1), w_.data(), K, S, V, Real(1), vn_.data(), V);  // V' = U - W S
  if (O != nullptr) {
    gemm<Real>(false, false, L, V, K, Real(1), qg_.data(), K, S, V, Real(0), O, V);   // (q⊙Γ) S
    gemm<Real>(false, false, L, V, L, Real(1), p_.data(), C, vn_.data(), V, Real(1), O, V);  // + P V'
  }
  for (int64_t d = 0; d < K; ++d)
    for (int64_t j = 0; j < V; ++j) S[d * V + j] *= gam_last_[d];
  gemm<Real>(true, false, K, V, L, Real(1), kt_.data(), K, vn_.data(), V, Real(1), S, V);  // + Kt^T V'
}

template <class Real>
void ChunkKernel<Real>::backward(const Real* S, const Real* dO, Real* dS, Real* dq, Real* dk, Real* dv, Real* dg,
                                 Real* db, Real* dw) {
  const int64_t K = K_, V = V_, C = C_, L = L_;
  const size_t ck = static_cast<size_t>(C * K), cv = static_cast<size_t>(C * V), cc = static_cast<size_t>(C * C);
  if (d_vn_.size() != cv) {
    for (auto* b : {&d_vn_, &d_x_}) b->resize(cv);
    for (auto* b : {&d_p_, &d_t_}) b->resize(cc);
    for (auto* b : {&d_kt_, &d_qg_, &d_w_, &d_bkg_, &d_g_, &d_qs_, &d_bk_, &d_qs_pair_, &d_bk_pair_, &d_k_pair_, &m_})
      b->resize(ck);
    d_s_new_.resize(static_cast<size_t>(K * V));
    d_g_last_.resize(static_cast<size_t>(K));
  }
  const Real* k = x_->k.data();
  const Real* v = x_->v.data();
  const Real* b = x_->b.data();
  const Real* w = x_->w.data();

  // V' = U - W S
  std::copy(u_.begin(), u_.begin() + L * V, vn_.begin());
  gemm<Real>(false, false, L, V, K, Real(-1), w_.data(), K, S, V, Real(1), vn_.data(), V);

  // Output and state-update adjoints.
  gemm<Real>(false, false, L, V, K, Real(1), kt_.data(), K, dS, V, Real(0), d_vn_.data(), V);      // Kt dS'
  gemm<Real>(true, false, L, V, L, Real(1), p_.data(), C, dO, V, Real(1), d_vn_.data(), V);        // + P^T dO
  gemm<Real>(false, true, L, L, V, Real(1), dO, V, vn_.data(), V, Real(0), d_p_.data(), C);        // dP = dO V'^T
  gemm<Real>(false, true, L, K, V, Real(1), vn_.data(), V, dS, V, Real(0), d_kt_.data(), K);       // dKt = V' dS'^T
  gemm<Real>(false, true, L, K, V, Real(1), dO, V, S, V, Real(0), d_qg_.data(), K);                // d(q⊙Γ) = dO S^T
  for (int64_t d = 0; d < K; ++d) {
    Real acc = 0;
    for (int64_t j = 0; j < V; ++j) acc += dS[d * V + j] * S[d * V + j];
    d_g_last_[d] = acc * gam_last_[d];
  }
  gemm<Real>(false, true, L, K, V, Real(-1), d_vn_.data(), V, S, V, Real(0), d_w_.data(), K);     // dW = -dV' S^T
  // dS_start = Diag(γ) dS' + (q⊙Γ)^T dO - W^T dV'
  for (int64_t d = 0; d < K; ++d)
    for (int64_t j = 0; j < V; ++j) d_s_new_[d * V + j] = gam_last_[d] * dS[d * V + j];
  gemm<Real>(true, false, K, V, L, Real(1), qg_.data(), K, dO, V, Real(1), d_s_new_.data(), V);
  gemm<Real>(true, false, K, V, L, Real(-1), w_.data(), K, d_vn_.data(), V, Real(1), d_s_new_.data(), V);

  // Through the triangular solves: dX = (I+T)^-T dU, d(b⊙k⊙Γ) = (I+T)^-T dW, dT = -(dX U^T + dBkΓ W^T).
  std::copy(d_vn_.begin(), d_vn_.begin() + L * V, d_x_.begin());
  std::copy(d_w_.begin(), d_w_.begin() + L * K, d_bkg_.begin());
  solve_unit_lower_transposed(t_.data(), C, L, d_x_.data(), V);
  solve_unit_lower_transposed(t_.data(), C, L, d_bkg_.data(), K);
  gemm<Real>(false, true, L, L, V, Real(-1), d_x_.data(), V, u_.data(), V, Real(0), d_t_.data(), C);
  gemm<Real>(false, true, L, L, K, Real(-1), d_bkg_.data(), K, w_.data(), K, Real(1), d_t_.data(), C);

  // Elementwise producers: Kt = k⊙rev, q⊙Γ, b⊙k⊙Γ, w⊙v.
  for (int64_t i = 0; i < L * K; ++i) {
    dk[i] = d_kt_[i] * rev_[i];
    d_g_[i] = d_qg_[i] * qg_[i] + d_bkg_[i] * bkg_[i];
    d_qs_[i] = d_qg_[i] * gam_[i];
    d_bk_[i] = d_bkg_[i] * gam_[i];
  }
  for (int64_t i = 0; i < L * V; ++i) {
    dw[i] = d_x_[i] * v[i];
    dv[i] = d_x_[i] * w[i];
  }

  // Decayed pair scores P (X = s·q) and T (X = b⊙k), both with Y = k: m_j = exp(G_i - G_j) for the current row i.
  std::fill(d_qs_pair_.begin(), d_qs_pair_.begin() + L * K, Real(0));
  std::fill(d_bk_pair_.begin(), d_bk_pair_.begin() + L * K, Real(0));
  std::fill(d_k_pair_.begin(), d_k_pair_.begin() + L * K, Real(0));
  std::vector<Real> kmj(static_cast<size_t>(K));
  for (int64_t i = 0; i < L; ++i) {
    const Real* e = &eg_[i * K];
    for (int64_t j = 0; j < i; ++j) {
      Real* mj = &m_[j * K];
#pragma omp simd
      for (int64_t d = 0; d < K; ++d) mj[d] *= e[d];
    }
    std::fill(m_.begin() + i * K, m_.begin() + (i + 1) * K, Real(1));
    const Real* qsi = &qs_[i * K];
    const Real* bki = &bk_[i * K];
    Real* dqsi = &d_qs_pair_[i * K];
    Real* dbki = &d_bk_pair_[i * K];
    for (int64_t j = 0; j < i; ++j) {
      const Real cp = d_p_[i * C + j];
      const Real ct = d_t_[i * C + j];
      const Real* mj = &m_[j * K];
      const Real* kj = k + j * K;
      Real* dkj = &d_k_pair_[j * K];
#pragma omp simd
      for (int64_t d = 0; d < K; ++d) {
        const Real km = kj[d] * mj[d];
        dqsi[d] += cp * km;
        dbki[d] += ct * km;
        dkj[d] += (cp * qsi[d] + ct * bki[d]) * mj[d];
      }
    }
  }
  for (int64_t i = 0; i < L * K; ++i) d_g_[i] += qs_[i] * d_qs_pair_[i] + bk_[i] * d_bk_pair_[i] - k[i] * d_k_pair_[i];
  // The diagonal P_ii = (s·q_i)·k_i has no decay: it adds to dq and dk but not to dg (its two dg terms cancel
  // exactly, so they are left out rather than cancelled in rounding).
  for (int64_t i = 0; i < L; ++i) {
    const Real cp = d_p_[i * C + i];
    for (int64_t d = 0; d < K; ++d) {
      d_qs_pair_[i * K + d] += cp * k[i * K + d];
      d_k_pair_[i * K + d] += cp * qs_[i * K + d];
    }
  }
  for (int64_t i = 0; i < L * K; ++i) {
    d_qs_[i] += d_qs_pair_[i];
    d_bk_[i] += d_bk_pair_[i];
    dk[i] += d_k_pair_[i] + d_bk_[i] * b[i];
    db[i] = d_bk_[i] * k[i];
    dq[i] = scale_ * d_qs_[i];
  }
  // g enters through G = cumsum(g) and G_last: dg_t = dG_last + Σ_{i>=t} dG_i. The Kt = k⊙exp(G_last - G_i) terms
  // cancel for i >= t, so they enter as the exclusive prefix Σ_{i<t} dKt_i⊙Kt_i instead (no cancellation).
  for (int64_t d = 0; d < K; ++d) {
    Real running = d_g_last_[d];
    for (int64_t t = L - 1; t >= 0; --t) {
      running += d_g_[t * K + d];
      dg[t * K + d] = running;
    }
    Real prefix = 0;
    for (int64_t t = 0; t < L; ++t) {
      dg[t * K + d] += prefix;
      prefix += d_kt_[t * K + d] * kt_[t * K + d];
    }
  }
  std::copy(d_s_new_.begin(), d_s_new_.end(), dS);
}

template class ChunkKernel<float>;
template class ChunkKernel<double>;

}  // namespace gdn2::cpu
