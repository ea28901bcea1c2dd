// The fp64 token-by-token GDN-2 oracle and its backpropagation through time, written to be obviously right.
#include <cmath>
#include <vector>

#include "cpu/gdn2.h"
#include "cpu/gdn2_rows.h"

namespace gdn2::cpu {

namespace {

using Mat = std::vector<double>;  // [K, V] row-major

// One token: S <- Diag(exp g) S; u = w⊙v - S^T (b⊙k); S <- S + k u^T; o = S^T (scale q).
// Keeps S after the decay (s_decayed) and u for the backward when asked.
void ref_step(int64_t K, int64_t V, double scale, const double* q, const double* k, const double* v, const double* g,
              const double* b, const double* w, Mat& S, double* o, Mat* s_decayed, double* u_out) {
  for (int64_t i = 0; i < K; ++i)
    for (int64_t j = 0; j < V; ++j) S[i * V + j] *= std::exp(g[i]);
  if (s_decayed) *s_decayed = S;
  std::vector<double> u(static_cast<size_t>(V));
  for (int64_t j = 0; j < V; ++j) {
    double erase = 0;
    for (int64_t i = 0; i < K; ++i) erase += b[i] * k[i] * S[i * V + j];
    u[j] = w[j] * v[j] - erase;
  }
  for (int64_t i = 0; i < K; ++i)
    for (int64_t j = 0; j < V; ++j) S[i * V + j] += k[i] * u[j];
  for (int64_t j = 0; j < V; ++j) {
    double acc = 0;
    for (int64_t i = 0; i < K; ++i) acc += scale * q[i] * S[i * V + j];
    o[j] = acc;
  }
  if (u_out)
    for (int64_t j = 0; j < V; ++j) u_out[j] = u[j];
}

}  // namespace

Gdn2Outputs gdn2_recurrent_ref(const Gdn2Problem& p, const Gdn2Inputs& in) {
  const int64_t K = p.K, V = p.V;
  Gdn2Outputs out;
  out.o = Tensor::zeros({p.B, p.T, p.HV, V}, DType::f64);
  out.ht = Tensor::zeros({p.N, p.HV, K, V}, DType::f64);
  for (int64_t n = 0; n < p.N; ++n) {
    for (int64_t hv = 0; hv < p.HV; ++hv) {
      Mat S(static_cast<size_t>(K * V));
      load_state(in.h0, p, n, hv, S.data());
      TokenRows<double> x;
      x.load(p, in, p.seq_start[n], p.seq_len[n], hv);
      std::vector<double> o(static_cast<size_t>(V));
      for (int64_t t = 0; t < p.seq_len[n]; ++t) {
        ref_step(K, V, p.scale, &x.q[t * K], &x.k[t * K], &x.v[t * V], &x.g[t * K], &x.b[t * K], &x.w[t * V], S,
                 o.data(), nullptr, nullptr);
        store_rows(out.o, p.HV, V, p.seq_start[n] + t, 1, hv, o.data());
      }
      store_rows(out.ht, p.N * p.HV, K * V, 0, 1, n * p.HV + hv, S.data());
    }
  }
  return out;
}

Gdn2Grads gdn2_recurrent_ref_bwd(const Gdn2Problem& p, const Gdn2Inputs& in, const Tensor& d_o, const Tensor& dht) {
  const int64_t K = p.K, V = p.V;
  constexpr int64_t kSegment = 64;  // states are checkpointed every kSegment tokens and recomputed in between
  Gdn2GradSinks<double> sinks(p, in);
  Tensor dh0 = Tensor::zeros({p.N, p.HV, K, V}, DType::f64);
  for (int64_t n = 0; n < p.N; ++n) {
    for (int64_t hv = 0; hv < p.HV; ++hv) {
      const int64_t L = p.seq_len[n], t0 = p.seq_start[n];
      TokenRows<double> x;
      x.load(p, in, t0, L, hv);
      std::vector<double> dO(static_cast<size_t>(L * V));
      load_rows(d_o, p.HV, V, t0, L, hv, dO.data());

      // Forward, keeping the state at the start of every segment.
      std::vector<Mat> checkpoints;
      Mat S(static_cast<size_t>(K * V));
      load_state(in.h0, p, n, hv, S.data());
      std::vector<double> o(static_cast<size_t>(V));
      for (int64_t t = 0; t < L; ++t) {
        if (t % kSegment == 0) checkpoints.push_back(S);
        ref_step(K, V, p.scale, &x.q[t * K], &x.k[t * K], &x.v[t * V], &x.g[t * K], &x.b[t * K], &x.w[t * V], S,
                 o.data(), nullptr, nullptr);
      }

      // dS holds dLoss/dS_t while walking t backwards.
      Mat dS(static_cast<size_t>(K * V), 0.0);
      if (dht.defined()) load_rows(dht, p.N * p.HV, K * V, 0, 1, n * p.HV + hv, dS.data());
      std::vector<double> gq(L * K, 0.0), gk(L * K, 0.0), gv(L * V, 0.0), gg(L * K, 0.0), gb(L * K, 0.0),
          gw(L * V, 0.0);
      for (int64_t seg = static_cast<int64_t>(checkpoints.size()) - 1; seg >= 0; --seg) {
        const int64_t s0 = seg * kSegment, s1 = std::min(L, s0 + kSegment);
        // Recompute the segment: states after each token, decayed states and u.
        std::vector<Mat> after(s1 - s0), decayed(s1 - s0);
        std::vector<double> us((s1 - s0) * V);
        Mat Sr = checkpoints[seg];
        for (int64_t t = s0; t < s1; ++t) {
          ref_step(K, V, p.scale, &x.q[t * K], &x.k[t * K], &x.v[t * V], &x.g[t * K], &x.b[t * K], &x.w[t * V], Sr,
                   o.data(), &decayed[t - s0], &us[(t - s0) * V]);
          after[t - s0] = Sr;
        }
        for (int64_t t = s1 - 1; t >= s0; --t) {
          const Mat& St = after[t - s0];
          const Mat& Sa = decayed[t - s0];
          const double* q = &x.q[t * K];
          const double* k = &x.k[t * K];
          const double* v = &x.v[t * V];
          const double* g = &x.g[t * K];
          const double* b = &x.b[t * K];
          const double* w = &x.w[t * V];
          const double* u = &us[(t - s0) * V];
          const double* dot = &dO[t * V];
          // o = S_t^T (scale q)
          for (int64_t i = 0; i < K; ++i) {
            double acc = 0;
            for (int64_t j = 0; j < V; ++j) {
              acc += St[i * V + j] * dot[j];
              dS[i * V + j] += p.scale * q[i] * dot[j];
            }
            gq[t * K + i] = p.scale * acc;
          }
          // S_t = S_a + k u^T
          std::vector<double> du(V, 0.0);
          for (int64_t i = 0; i < K; ++i) {
            double acc = 0;
            for (int64_t j = 0; j < V; ++j) {
              acc += dS[i * V + j] * u[j];
              du[j] += dS[i * V + j] * k[i];
            }
            gk[t * K + i] += acc;
          }
          // u = w⊙v - S_a^T (b⊙k)
          for (int64_t j = 0; j < V; ++j) {
            gw[t * V + j] = du[j] * v[j];
            gv[t * V + j] = du[j] * w[j];
          }
          for (int64_t i = 0; i < K; ++i) {
            double dbk = 0;
            for (int64_t j = 0; j < V; ++j) {
              dbk -= Sa[i * V + j] * du[j];
              dS[i * V + j] -= b[i] * k[i] * du[j];
            }
            gb[t * K + i] = dbk * k[i];
            gk[t * K + i] += dbk * b[i];
          }
          // S_a = Diag(exp g) S_{t-1}
          for (int64_t i = 0; i < K; ++i) {
            double acc = 0;
            for (int64_t j = 0; j < V; ++j) {
              acc += dS[i * V + j] * Sa[i * V + j];
              dS[i * V + j] *= std::exp(g[i]);
            }
            gg[t * K + i] = acc;
          }
        }
      }
      x.l2norm_bwd(p, gq.data(), gk.data());
      sinks.store(hv, t0, L, gq.data(), gk.data(), gv.data(), gg.data(), gb.data(), gw.data());
      store_rows(dh0, p.N * p.HV, K * V, 0, 1, n * p.HV + hv, dS.data());
    }
  }
  Gdn2Grads r = sinks.finish();
  if (p.has_h0) r.dh0 = dh0;
  return r;
}

}  // namespace gdn2::cpu
