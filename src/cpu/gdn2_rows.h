// Moving one (sequence, value head) slice of GDN-2 tensors between [tokens, heads, dim] memory and dense Real rows.
#pragma once

#include <algorithm>
#include <vector>

#include "ops/gdn2_problem.h"

namespace gdn2::cpu {

// Rows [tok0, tok0 + count) of head `head` in a [tokens, heads, dim] tensor, converted to Real, into out[count * dim].
template <class Real>
void load_rows(const Tensor& x, int64_t heads, int64_t dim, int64_t tok0, int64_t count, int64_t head, Real* out) {
  const size_t esize = dtype_size(x.dtype());
  const auto* base = static_cast<const std::byte*>(x.raw());
  for (int64_t t = 0; t < count; ++t) {
    const int64_t offset = ((tok0 + t) * heads + head) * dim;
    dtype_convert(base + offset * esize, x.dtype(), out + t * dim, dtype_of<Real>(), static_cast<size_t>(dim));
  }
}

// A gate's rows expanded to [count, dim]: channel gates are read, per-head gates broadcast, absent gates filled.
template <class Real>
void load_gate(const Tensor& x, const GateSpec& s, int64_t dim, int64_t tok0, int64_t count, int64_t head,
               Real absent_value, Real* out) {
  if (s.form == GateForm::channel) {
    load_rows(x, s.heads, dim, tok0, count, head, out);
  } else if (s.form == GateForm::head) {
    std::vector<Real> scalar(static_cast<size_t>(count));
    load_rows(x, s.heads, 1, tok0, count, head, scalar.data());
    for (int64_t t = 0; t < count; ++t) std::fill(out + t * dim, out + (t + 1) * dim, scalar[static_cast<size_t>(t)]);
  } else {
    std::fill(out, out + count * dim, absent_value);
  }
}

// The [K, V] initial state of sequence n, value head hv (zeros without h0).
template <class Real>
void load_state(const Tensor& h0, const Gdn2Problem& p, int64_t n, int64_t hv, Real* out) {
  if (!h0.defined()) {
    std::fill(out, out + p.K * p.V, Real(0));
    return;
  }
  load_rows(h0, p.N * p.HV, p.K * p.V, 0, 1, n * p.HV + hv, out);
}

// Writes count rows of dim values into a [tokens, heads, dim] tensor of dtype Real.
template <class Real>
void store_rows(Tensor& y, int64_t heads, int64_t dim, int64_t tok0, int64_t count, int64_t head, const Real* rows) {
  Real* base = y.data<Real>();
  for (int64_t t = 0; t < count; ++t)
    std::copy(rows + t * dim, rows + (t + 1) * dim, base + ((tok0 + t) * heads + head) * dim);
}

// Gradient of one GDN-2 input, written per value head without races and reduced afterwards (deterministically)
// to the input's own shape: summed over the value heads of a group and, for per-head gates, over the channels.
// Inputs with one row per value head and channel are written in place, with no reduction pass.
template <class Real>
class GradSink {
 public:
  GradSink(const Gdn2Problem& p, GateSpec spec, int64_t dim, const Shape& input_shape)
      : p_(p), spec_(spec), dim_(dim), input_shape_(input_shape) {
    if (!active()) return;
    direct_ = spec_.form == GateForm::channel && spec_.heads == p.HV;
    // Every (token, value head) row is written exactly once, so no zero fill is needed.
    buffer_ = direct_ ? Tensor::empty(input_shape_, dtype_of<Real>())
                      : Tensor::empty({p.tokens(), p.HV, dim}, dtype_of<Real>());
  }
  bool active() const { return spec_.form != GateForm::absent; }
  // Stores count rows of dim values for value head hv, tokens [tok0, tok0 + count).
  void store(int64_t hv, int64_t tok0, int64_t count, const Real* rows) {
    if (active()) store_rows(buffer_, p_.HV, dim_, tok0, count, hv, rows);
  }

  Tensor finish() const {
    if (!active()) return Tensor();
    if (direct_) return buffer_;
    Tensor out = Tensor::zeros(input_shape_, dtype_of<Real>());
    Real* o = out.data<Real>();
    const Real* full = buffer_.data<Real>();
    const int64_t heads = spec_.heads, per = p_.HV / heads;
    const bool channel = spec_.form == GateForm::channel;
#pragma omp parallel for schedule(static)
    for (int64_t t = 0; t < p_.tokens(); ++t) {
      for (int64_t h = 0; h < heads; ++h) {
        for (int64_t j = 0; j < per; ++j) {
          const Real* src = full + (t * p_.HV + h * per + j) * dim_;
          if (channel) {
            Real* dst = o + (t * heads + h) * dim_;
            for (int64_t d = 0; d < dim_; ++d) dst[d] += src[d];
          } else {
            Real s = 0;
            for (int64_t d = 0; d < dim_; ++d) s += src[d];
            o[t * heads + h] += s;
          }
        }
      }
    }
    return out;
  }

 private:
  const Gdn2Problem& p_;
  GateSpec spec_;
  int64_t dim_;
  Shape input_shape_;
  bool direct_ = false;
  Tensor buffer_;
};

// The GateSpec of q, k (always channel, H heads) and v (channel, HV heads), for GradSink.
inline GateSpec qk_spec(const Gdn2Problem& p) { return {GateForm::channel, p.H}; }
inline GateSpec v_spec(const Gdn2Problem& p) { return {GateForm::channel, p.HV}; }

}  // namespace gdn2::cpu

#include "cpu/l2norm_rows.h"

namespace gdn2::cpu {

// The inputs of tokens [tok0, tok0 + count) for value head hv as dense Real rows: q, k (L2-normalised when the
// problem asks, scale not applied), v, and the gates expanded to channels (b = 0 and w = 1 when absent).
template <class Real>
struct TokenRows {
  int64_t count = 0;
  std::vector<Real> q, k, v, g, b, w;  // [count, K] or [count, V]
  std::vector<Real> q_rstd, k_rstd;    // [count], when qk_l2norm

  void load(const Gdn2Problem& p, const Gdn2Inputs& in, int64_t tok0, int64_t n, int64_t hv) {
    count = n;
    const size_t nk = static_cast<size_t>(n * p.K), nv = static_cast<size_t>(n * p.V);
    q.resize(nk), k.resize(nk), g.resize(nk), b.resize(nk), v.resize(nv), w.resize(nv);
    const int64_t hq = p.qk_head(hv);
    load_rows(in.q, p.H, p.K, tok0, n, hq, q.data());
    load_rows(in.k, p.H, p.K, tok0, n, hq, k.data());
    load_rows(in.v, p.HV, p.V, tok0, n, hv, v.data());
    load_gate(in.g_log, p.g, p.K, tok0, n, p.gate_head(p.g, hv), Real(0), g.data());
    load_gate(in.b, p.b, p.K, tok0, n, p.gate_head(p.b, hv), Real(0), b.data());
    load_gate(in.w, p.w, p.V, tok0, n, p.gate_head(p.w, hv), Real(1), w.data());
    if (p.qk_l2norm) {
      q_rstd.resize(static_cast<size_t>(n));
      k_rstd.resize(static_cast<size_t>(n));
      for (int64_t t = 0; t < n; ++t) {
        q_rstd[t] = l2norm_row(q.data() + t * p.K, p.K);
        k_rstd[t] = l2norm_row(k.data() + t * p.K, p.K);
      }
    }
  }

  // Turns gradients wrt the normalised q, k rows (in place) into gradients wrt the raw inputs.
  void l2norm_bwd(const Gdn2Problem& p, Real* dq, Real* dk) const {
    if (!p.qk_l2norm) return;
    for (int64_t t = 0; t < count; ++t) {
      l2norm_row_bwd(q.data() + t * p.K, q_rstd[t], dq + t * p.K, p.K);
      l2norm_row_bwd(k.data() + t * p.K, k_rstd[t], dk + t * p.K, p.K);
    }
  }
};

// All gradient sinks of one GDN-2 backward, shaped like the inputs.
template <class Real>
struct Gdn2GradSinks {
  GradSink<Real> dq, dk, dv, dg, db, dw;
  Gdn2GradSinks(const Gdn2Problem& p, const Gdn2Inputs& in)
      : dq(p, qk_spec(p), p.K, in.q.shape()),
        dk(p, qk_spec(p), p.K, in.k.shape()),
        dv(p, v_spec(p), p.V, in.v.shape()),
        dg(p, p.g, p.K, in.g_log.shape()),
        db(p, p.b, p.K, in.b.defined() ? in.b.shape() : Shape{}),
        dw(p, p.w, p.V, in.w.defined() ? in.w.shape() : Shape{}) {}
  // Stores one token range's gradients of value head hv (rows as produced by the kernels).
  void store(int64_t hv, int64_t tok0, int64_t n, const Real* gq, const Real* gk, const Real* gv, const Real* gg,
             const Real* gb, const Real* gw) {
    dq.store(hv, tok0, n, gq);
    dk.store(hv, tok0, n, gk);
    dv.store(hv, tok0, n, gv);
    dg.store(hv, tok0, n, gg);
    db.store(hv, tok0, n, gb);
    dw.store(hv, tok0, n, gw);
  }
  Gdn2Grads finish() const {
    Gdn2Grads r;
    r.dq = dq.finish();
    r.dk = dk.finish();
    r.dv = dv.finish();
    r.dg = dg.finish();
    r.db = db.finish();
    r.dw = dw.finish();
    return r;
  }
};

}  // namespace gdn2::cpu
