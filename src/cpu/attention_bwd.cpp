// CPU attention backward (FlashAttention style, probabilities recomputed from lse): D_i = rowsum(do ⊙ o), then a
// dq pass over tiles of query rows and a dk/dv pass over tiles of keys, each tile owned by one task, so nothing is
// shared between threads and every sum runs in a fixed order.
#include <algorithm>
#include <cmath>
#include <vector>

#include "cpu/attention.h"
#include "cpu/attention_tile.h"
#include "cpu/exp_approx.h"
#include "cpu/gemm.h"
#include "cpu/parallel.h"

namespace gdn2::cpu {

namespace {

// D_i = Σ_d do[i, d] · o[i, d] for every (b, h, i), laid out [B, Hq, Tq] like lse.
template <class T>
std::vector<T> row_deltas(const attn::Geometry& g, const T* d_o, const T* o) {
  std::vector<T> delta(static_cast<size_t>(g.B * g.Hq * g.Tq));
#pragma omp parallel for collapse(2) schedule(static) if (worth_parallel(g.B * g.Tq * g.Hq * g.D))
  for (int64_t b = 0; b < g.B; ++b)
    for (int64_t i = 0; i < g.Tq; ++i)
      for (int64_t h = 0; h < g.Hq; ++h) {
        const T* x = d_o + g.q_at(b, i, h);
        const T* y = o + g.q_at(b, i, h);
        T s = T(0);
        for (int64_t d = 0; d < g.D; ++d) s += x[d] * y[d];
        delta[static_cast<size_t>(g.stat_at(b, h) + i)] = s;
      }
  return delta;
}

// dq for row tiles: S = scale·Q Kᵀ, P = exp(S − lse), dP = dO Vᵀ, dS = P ⊙ (dP − D_i), dQ = scale·dS K.
template <class T>
void dq_pass(const AttentionArgs& a, const attn::Geometry& g, const T* d_o, const T* lse, const T* delta, T* dq) {
  const T* q = a.q.data<T>();
  const T* k = a.k.data<T>();
  const T* v = a.v.data<T>();
  const T scale = static_cast<T>(a.scale);
  const int64_t M_max = g.max_stacked_rows();
  const size_t buf = static_cast<size_t>(M_max * g.max_keys(g.rows_per_tile()));
  const size_t rows_buf = static_cast<size_t>(M_max * g.D);
#pragma omp parallel if (worth_parallel(g.B * g.Hq * g.Tq * g.max_keys(g.Tq) * g.D))
  {
    std::vector<T> s(buf), dp(buf), qbuf(rows_buf), dobuf(rows_buf), dqbuf(rows_buf);
#pragma omp for schedule(dynamic, 1)
    for (int64_t task = 0; task < g.row_tasks(); ++task) {
      const attn::RowTile t = g.row_tile(task);
      const int64_t M = g.G * t.rows, n = t.n;
      const T* kp = k + g.k_at(t.b, t.klo, t.kv);
      gemm<T>(false, true, M, n, g.D, scale, attn::gather_stack(g, t, q, qbuf.data()), g.stack_ld(), kp,
              g.k_stride(), T(0), s.data(), n);
      gemm<T>(false, true, M, n, g.D, T(1), attn::gather_stack(g, t, d_o, dobuf.data()), g.stack_ld(),
              v + g.k_at(t.b, t.klo, t.kv), g.k_stride(), T(0), dp.data(), n);
      for (int64_t m = 0; m < M; ++m) {
        const int64_t i = t.row(m), at = g.stat_at(t.b, t.head(g.G, m)) + i;
        const T l = lse[at], di = delta[at];
        const int64_t lo = g.key_lo(i) - t.klo, hi = g.key_hi(i) - t.klo;
        T* sr = s.data() + m * n;
        const T* dpr = dp.data() + m * n;
        for (int64_t c = 0; c < lo; ++c) sr[c] = T(0);
        exp_shifted(sr + lo, hi - lo + 1, l);
        for (int64_t c = lo; c <= hi; ++c) sr[c] *= dpr[c] - di;
        for (int64_t c = hi + 1; c < n; ++c) sr[c] = T(0);
      }
      gemm<T>(false, false, M, g.D, n, scale, s.data(), n, kp, g.k_stride(), T(0),
              attn::output_stack(g, t, dq, dqbuf.data()), g.stack_ld());
      attn::scatter_stack(g, t, dqbuf.data(), dq);
    }
  }
}

// dk, dv for tiles of keys, summed over the query heads of the kv head in head order: with Sᵀ = scale·K Qᵀ
// and Pᵀ = exp(Sᵀ − lse), dV += Pᵀ dO and dK += scale·dSᵀ Q, dSᵀ = Pᵀ ⊙ (V dOᵀ − D_i). dk and dv arrive zeroed.
template <class T>
void dkv_pass(const AttentionArgs& a, const attn::Geometry& g, const T* d_o, const T* lse, const T* delta, T* dk,
              T* dv) {
  const T* q = a.q.data<T>();
  const T* k = a.k.data<T>();
  const T* v = a.v.data<T>();
  const T scale = static_cast<T>(a.scale);
  const int64_t tiles = (g.Tk + attn::kKeyTile - 1) / attn::kKeyTile;
  const int64_t tasks = g.B * g.Hkv * tiles;
  const int64_t max_rows = g.window > 0 ? std::min(g.Tq, attn::kKeyTile + g.window - 1) : g.Tq;
  const size_t buf = static_cast<size_t>(attn::kKeyTile * max_rows);
#pragma omp parallel if (worth_parallel(g.B * g.Hq * g.Tq * g.max_keys(g.Tq) * g.D))
  {
    std::vector<T> st(buf), dpt(buf);
#pragma omp for schedule(dynamic, 1)
    for (int64_t task = 0; task < tasks; ++task) {
      const int64_t b = task / (g.Hkv * tiles), kv = task / tiles % g.Hkv, tile = task % tiles;
      const int64_t j0 = tile * attn::kKeyTile, keys = std::min(attn::kKeyTile, g.Tk - j0);
      const int64_t ilo = g.row_lo(j0), ihi = g.row_hi(j0 + keys - 1);
      if (ilo > ihi) continue;  // no query sees these keys
      const int64_t n = ihi - ilo + 1;
      const T* kp = k + g.k_at(b, j0, kv);
      const T* vp = v + g.k_at(b, j0, kv);
      T* dkp = dk + g.k_at(b, j0, kv);
      T* dvp = dv + g.k_at(b, j0, kv);
      for (int64_t h = kv * g.G; h < (kv + 1) * g.G; ++h) {
        const T* qp = q + g.q_at(b, ilo, h);
        const T* dop = d_o + g.q_at(b, ilo, h);
        const T* l = lse + g.stat_at(b, h) + ilo;
        const T* di = delta + g.stat_at(b, h) + ilo;
        gemm<T>(false, true, keys, n, g.D, scale, kp, g.k_stride(), qp, g.q_stride(), T(0), st.data(), n);
        gemm<T>(false, true, keys, n, g.D, T(1), vp, g.k_stride(), dop, g.q_stride(), T(0), dpt.data(), n);
        for (int64_t c = 0; c < keys; ++c) {
          // Rows [lo, hi] see key j0 + c; none when the window has passed it (then hi = lo − 1).
          const int64_t lo = g.row_lo(j0 + c) - ilo, hi = std::max(g.row_hi(j0 + c) - ilo, lo - 1);
          T* sr = st.data() + c * n;
          T* dr = dpt.data() + c * n;
          for (int64_t r = 0; r < lo; ++r) sr[r] = dr[r] = T(0);
          exp_shifted_each(sr + lo, l + lo, hi - lo + 1);
          for (int64_t r = lo; r <= hi; ++r) dr[r] = sr[r] * (dr[r] - di[r]);
          for (int64_t r = hi + 1; r < n; ++r) sr[r] = dr[r] = T(0);
        }
        gemm<T>(false, false, keys, g.D, n, T(1), st.data(), n, dop, g.q_stride(), T(1), dvp, g.k_stride());
        gemm<T>(false, false, keys, g.D, n, scale, dpt.data(), n, qp, g.q_stride(), T(1), dkp, g.k_stride());
      }
    }
  }
}

template <class T>
AttentionGrads backward_impl(const AttentionArgs& a, const Tensor& d_o_t, const Tensor& o_t, const Tensor& lse_t) {
  const attn::Geometry g(a);
  const DType dt = a.q.dtype();
  AttentionGrads r{Tensor::empty(a.q.shape(), dt), Tensor::zeros(a.k.shape(), dt), Tensor::zeros(a.v.shape(), dt)};
  const T* d_o = d_o_t.data<T>();
  const T* lse = lse_t.data<T>();
  const std::vector<T> delta = row_deltas(g, d_o, o_t.data<T>());
  dq_pass(a, g, d_o, lse, delta.data(), r.dq.data<T>());
  dkv_pass(a, g, d_o, lse, delta.data(), r.dk.data<T>(), r.dv.data<T>());
  return r;
}

}  // namespace

AttentionGrads attention_backward(const AttentionArgs& a, const Tensor& d_o, const Tensor& o, const Tensor& lse) {
  return a.q.dtype() == DType::f64 ? backward_impl<double>(a, d_o, o, lse) : backward_impl<float>(a, d_o, o, lse);
}

}  // namespace gdn2::cpu
