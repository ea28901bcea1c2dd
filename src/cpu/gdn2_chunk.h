// One chunk of the GDN-2 WY form on one head: intermediates, forward state/output update and exact backward.
//
// Within a chunk of L tokens, with G the inclusive cumsum of g, Γ = exp(G), γ = Γ_last:
//   T_ij = Σ_d (b⊙k)_id k_jd exp(G_id - G_jd)  (j < i),  P_ij = Σ_d (s·q)_id k_jd exp(G_id - G_jd)  (j <= i)
//   W = (I + T)^-1 (b⊙k⊙Γ),  U = (I + T)^-1 (w⊙v),  V' = U - W S
//   O = ((s·q)⊙Γ) S + P V',  S <- Diag(γ) S + (k⊙exp(G_last - G))^T V'
// Every decay factor is a product of per-token exp(g) <= 1 (never exp of a positive cumsum), so nothing overflows
// however negative the gates are.
#pragma once

#include <cstdint>
#include <vector>

#include "cpu/gdn2_rows.h"

namespace gdn2::cpu {

template <class Real>
class ChunkKernel {
 public:
  ChunkKernel(int64_t chunk, int64_t K, int64_t V, Real scale);

  // Computes the chunk's intermediates from x's first L rows (q, k normalised; scale not yet applied).
  void prepare(const TokenRows<Real>& x, int64_t L);
  // S [K, V] (chunk-start state) becomes the chunk-end state; O [L, V] gets the outputs when not null.
  void forward(Real* S, Real* O);
  // Given the chunk-start state S, dO [L, V] and dS (in: gradient wrt the chunk-end state; out: wrt the chunk-start
  // state), writes gradient rows wrt the prepared inputs: dq, dk (wrt the normalised q, k), dv, dg, db, dw.
  void backward(const Real* S, const Real* dO, Real* dS, Real* dq, Real* dk, Real* dv, Real* dg, Real* db, Real* dw);

 private:
  int64_t C_, K_, V_, L_ = 0;
  Real scale_;
  const TokenRows<Real>* x_ = nullptr;
  // [C, K]
  std::vector<Real> qs_, eg_, gam_, rev_, kt_, bk_, bkg_, qg_, w_, km_;
  // [C, V]
  std::vector<Real> xw_, u_, vn_;
  // [C, C]
  std::vector<Real> t_, p_;
  std::vector<Real> gam_last_;  // [K]
  // backward scratch
  std::vector<Real> d_vn_, d_x_;                                            // [C, V]
  std::vector<Real> d_p_, d_t_;                                             // [C, C]
  std::vector<Real> d_kt_, d_qg_, d_w_, d_bkg_, d_g_, d_qs_, d_bk_, d_qs_pair_, d_bk_pair_, d_k_pair_, m_;  // [C, K]
  std::vector<Real> d_s_new_;                                               // [K, V]
  std::vector<Real> d_g_last_;                                              // [K]
};

}  // namespace gdn2::cpu
