// fp32 token-recurrent GDN-2: the decode step (state in place) and the forward built from it.
#include <cmath>
#include <vector>

#include "cpu/gdn2.h"
#include "cpu/gdn2_rows.h"

namespace gdn2::cpu {

namespace {

// One token on one head's state S [K, V], two passes over S:
//   pass 1: S <- Diag(exp g) S and the erase read e = S^T (b⊙k);  u = w⊙v - e
//   pass 2: S <- S + k u^T and o = S^T (scale q).
void step_head(int64_t K, int64_t V, float scale, const float* q, const float* k, const float* v, const float* g,
               const float* b, const float* w, float* S, float* o, float* u) {
  for (int64_t j = 0; j < V; ++j) u[j] = 0.f;
  for (int64_t i = 0; i < K; ++i) {
    const float decay = std::exp(g[i]), bk = b[i] * k[i];
    float* row = S + i * V;
#pragma omp simd
    for (int64_t j = 0; j < V; ++j) {
      row[j] *= decay;
      u[j] += bk * row[j];
    }
  }
  for (int64_t j = 0; j < V; ++j) {
    u[j] = w[j] * v[j] - u[j];
    o[j] = 0.f;
  }
  for (int64_t i = 0; i < K; ++i) {
    const float ki = k[i], qi = scale * q[i];
    float* row = S + i * V;
#pragma omp simd
    for (int64_t j = 0; j < V; ++j) {
      row[j] += ki * u[j];
      o[j] += qi * row[j];
    }
  }
}

}  // namespace

Gdn2Outputs gdn2_recurrent(const Gdn2Problem& p, const Gdn2Inputs& in) {
  const int64_t K = p.K, V = p.V, tasks = p.N * p.HV;
  Gdn2Outputs out;
  out.o = Tensor::zeros({p.B, p.T, p.HV, V}, DType::f32);
  out.ht = Tensor::zeros({p.N, p.HV, K, V}, DType::f32);
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t task = 0; task < tasks; ++task) {
    const int64_t n = task / p.HV, hv = task % p.HV;
    std::vector<float> S(static_cast<size_t>(K * V)), u(static_cast<size_t>(V));
    load_state(in.h0, p, n, hv, S.data());
    TokenRows<float> x;
    x.load(p, in, p.seq_start[n], p.seq_len[n], hv);
    std::vector<float> o(static_cast<size_t>(p.seq_len[n] * V));
    for (int64_t t = 0; t < p.seq_len[n]; ++t)
      step_head(K, V, static_cast<float>(p.scale), &x.q[t * K], &x.k[t * K], &x.v[t * V], &x.g[t * K], &x.b[t * K],
                &x.w[t * V], S.data(), &o[t * V], u.data());
    store_rows(out.o, p.HV, V, p.seq_start[n], p.seq_len[n], hv, o.data());
    store_rows(out.ht, p.N * p.HV, K * V, 0, 1, n * p.HV + hv, S.data());
  }
  return out;
}

Tensor gdn2_recurrent_step(const Gdn2Problem& p, const Gdn2Inputs& in, Tensor& state) {
  const int64_t K = p.K, V = p.V, tasks = p.N * p.HV;
  Tensor o = Tensor::zeros({p.B, p.T, p.HV, V}, DType::f32);
  float* S_all = state.data<float>();
  float* o_all = o.data<float>();
#pragma omp parallel for schedule(static) if (tasks * K * V * p.T > 65536)
  for (int64_t task = 0; task < tasks; ++task) {
    const int64_t n = task / p.HV, hv = task % p.HV, tok0 = p.seq_start[n];
    TokenRows<float> x;
    x.load(p, in, tok0, p.seq_len[n], hv);
    std::vector<float> u(static_cast<size_t>(V));
    for (int64_t t = 0; t < p.seq_len[n]; ++t)
      step_head(K, V, static_cast<float>(p.scale), &x.q[t * K], &x.k[t * K], &x.v[t * V], &x.g[t * K], &x.b[t * K],
                &x.w[t * V], S_all + task * K * V, o_all + ((tok0 + t) * p.HV + hv) * V, u.data());
  }
  return o;
}

}  // namespace gdn2::cpu
