// CPU attention forward: per tile of query rows (all query heads of a kv head stacked) one GEMM for the scores, a
// max-subtracted softmax over each row's visible keys and one GEMM for P·V; parallel over (batch, kv head, tile).
#include <cmath>
#include <vector>

#include "cpu/attention.h"
#include "cpu/attention_tile.h"
#include "cpu/exp_approx.h"
#include "cpu/gemm.h"
#include "cpu/parallel.h"

namespace gdn2::cpu {

namespace {

// Turns scores s[0, n) into probabilities over the columns [lo, hi] (zero elsewhere); returns log Σ exp(s[lo..hi]).
template <class T>
T softmax_row(T* s, int64_t n, int64_t lo, int64_t hi) {
  T m = s[lo];
#pragma omp simd reduction(max : m)
  for (int64_t c = lo + 1; c <= hi; ++c) m = s[c] > m ? s[c] : m;
  exp_shifted(s + lo, hi - lo + 1, m);
  T sum = T(0);
#pragma omp simd reduction(+ : sum)
  for (int64_t c = lo; c <= hi; ++c) sum += s[c];
  const T inv = T(1) / sum;
  for (int64_t c = 0; c < lo; ++c) s[c] = T(0);
#pragma omp simd
  for (int64_t c = lo; c <= hi; ++c) s[c] *= inv;
  for (int64_t c = hi + 1; c < n; ++c) s[c] = T(0);
  return m + std::log(sum);
}

template <class T>
AttentionResult forward_impl(const AttentionArgs& a) {
  const attn::Geometry g(a);
  AttentionResult r{Tensor::empty({g.B, g.Tq, g.Hq, g.D}, a.q.dtype()), Tensor::empty({g.B, g.Hq, g.Tq}, a.q.dtype())};
  const T* q = a.q.data<T>();
  const T* k = a.k.data<T>();
  const T* v = a.v.data<T>();
  T* o = r.o.data<T>();
  T* lse = r.lse.data<T>();
  const T scale = static_cast<T>(a.scale);
  const int64_t M_max = g.max_stacked_rows();
#pragma omp parallel if (worth_parallel(g.B * g.Hq * g.Tq * g.max_keys(g.Tq) * g.D))
  {
    std::vector<T> s(static_cast<size_t>(M_max * g.max_keys(g.rows_per_tile()))),
        qbuf(static_cast<size_t>(M_max * g.D)), obuf(static_cast<size_t>(M_max * g.D));
#pragma omp for schedule(dynamic, 1)
    for (int64_t task = 0; task < g.row_tasks(); ++task) {
      const attn::RowTile t = g.row_tile(task);
      const int64_t M = g.G * t.rows, n = t.n;
      gemm<T>(false, true, M, n, g.D, scale, attn::gather_stack(g, t, q, qbuf.data()), g.stack_ld(),
              k + g.k_at(t.b, t.klo, t.kv), g.k_stride(), T(0), s.data(), n);
      for (int64_t m = 0; m < M; ++m) {
        const int64_t i = t.row(m);
        lse[g.stat_at(t.b, t.head(g.G, m)) + i] =
            softmax_row(s.data() + m * n, n, g.key_lo(i) - t.klo, g.key_hi(i) - t.klo);
      }
      gemm<T>(false, false, M, g.D, n, T(1), s.data(), n, v + g.k_at(t.b, t.klo, t.kv), g.k_stride(), T(0),
              attn::output_stack(g, t, o, obuf.data()), g.stack_ld());
      attn::scatter_stack(g, t, obuf.data(), o);
    }
  }
  return r;
}

}  // namespace

AttentionResult attention_forward(const AttentionArgs& a) {
  return a.q.dtype() == DType::f64 ? forward_impl<double>(a) : forward_impl<float>(a);
}

}  // namespace gdn2::cpu
