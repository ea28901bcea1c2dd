// Public GDN-2 ops: validate the shape contract once, then dispatch to a backend.
#include "gdn2/ops/gdn2.h"

#include <algorithm>
#include <cstring>

#include "cpu/gdn2.h"
#ifdef GDN2_WITH_CUDA
#include "cuda/gdn2.h"
#endif
#include "gdn2/ops/decay_gate.h"
#include "gdn2/ops/dense.h"
#include "ops/gdn2_problem.h"

namespace gdn2 {

namespace {
int64_t gate_head_dim(const Gdn2Problem& p) { return p.g.form == GateForm::channel ? p.K : 1; }

// With Gdn2Options::gates_logits, b and w replaced by their sigmoid (once when w is b), for a backend that takes the
// gates themselves.
Gdn2Inputs logits_resolved(const Gdn2Problem& p, const Gdn2Inputs& in) {
  if (!p.gates_logits) return in;
  Gdn2Inputs r = in;
  if (in.b.defined()) r.b = sigmoid_forward(in.b);
  if (in.w.defined())
    r.w = in.b.defined() && in.w.raw() == in.b.raw() && in.w.shape() == in.b.shape() && in.w.dtype() == in.b.dtype()
              ? r.b
              : sigmoid_forward(in.w);
  return r;
}

// The same problem with its gates resolved (logits_resolved).
Gdn2Problem gates_given(Gdn2Problem p) {
  p.gates_logits = false;
  return p;
}

// The CPU backend takes g, b and w themselves: with the in-op gate, g = decay_gate(f) is formed here, and the gates'
// logits go through their sigmoid.
Gdn2Inputs gate_resolved(const Gdn2Problem& p, const Gdn2Inputs& given) {
  const Gdn2Inputs in = logits_resolved(p, given);
  if (!p.gate_in_op) return in;
  Gdn2Inputs r = in;
  r.g_log = decay_gate_forward(in.g_log, in.A_log, in.dt_bias, gate_head_dim(p));
  r.A_log = Tensor();
  r.dt_bias = Tensor();
  return r;
}

// dg of the resolved call becomes the gradient of f, A_log and dt_bias, on the inputs' device.
Gdn2Grads gate_grads(const Gdn2Problem& p, const Gdn2Inputs& in, Gdn2Grads g) {
  if (!p.gate_in_op) return g;
  DecayGateGrads d = decay_gate_backward(g.dg, in.g_log, in.A_log, in.dt_bias, gate_head_dim(p), p.grads_like_inputs);
  g.dg = d.df;
  g.dA_log = d.dA_log;
  g.ddt_bias = d.ddt_bias;
  return g;
}

// With Gdn2Options::grads_like_inputs, the input gradients in their inputs' dtypes (those a backend wrote so already
// stay as they are).
Gdn2Grads like_inputs(const Gdn2Problem& p, const Gdn2Inputs& in, Gdn2Grads g) {
  if (!p.grads_like_inputs) return g;
  const std::pair<Tensor*, const Tensor*> pairs[] = {{&g.dq, &in.q}, {&g.dk, &in.k}, {&g.dv, &in.v},
                                                     {&g.db, &in.b}, {&g.dw, &in.w}};
  for (auto [grad, input] : pairs)
    if (grad->defined() && grad->dtype() != input->dtype()) *grad = grad->to(input->dtype());
  return g;
}
}  // namespace

Gdn2Outputs gdn2_recurrent_ref(const Gdn2Inputs& in, const Gdn2Options& opt) {
  const Gdn2Problem p = gdn2_problem(in, opt, "gdn2_recurrent_ref");
  GDN2_CHECK(p.device == Device::cpu, UnsupportedError, "gdn2_recurrent_ref is the CPU oracle: pass CPU tensors");
  return cpu::gdn2_recurrent_ref(p, gate_resolved(p, in));
}

Gdn2Grads gdn2_recurrent_ref_bwd(const Gdn2Inputs& in, const Gdn2Options& opt, const Tensor& d_o, const Tensor& dht) {
  const Gdn2Problem p = gdn2_problem(in, opt, "gdn2_recurrent_ref_bwd");
  GDN2_CHECK(p.device == Device::cpu, UnsupportedError, "gdn2_recurrent_ref_bwd is the CPU oracle: pass CPU tensors");
  gdn2_check_cotangents(p, d_o, dht, "gdn2_recurrent_ref_bwd");
  return gate_grads(p, in, cpu::gdn2_recurrent_ref_bwd(p, gate_resolved(p, in), d_o, dht));
}

namespace {
// Ops whose inputs are CUDA tensors run on the CUDA backend.
bool on_cuda(const Gdn2Problem& p, const char* op, bool supported = true) {
  if (p.device == Device::cpu) return false;
  GDN2_CHECK(supported, UnsupportedError, op, " on CUDA computes in F32 only (opt.compute = F64 is for the CPU)");
#ifdef GDN2_WITH_CUDA
  return true;
#else
  GDN2_THROW(UnsupportedError, op, ": CUDA tensors need a build with the CUDA backend");
#endif
}
}  // namespace

Gdn2Outputs gdn2_recurrent(const Gdn2Inputs& in, const Gdn2Options& opt) {
  const Gdn2Problem p = gdn2_problem(in, opt, "gdn2_recurrent");
#ifdef GDN2_WITH_CUDA
  if (on_cuda(p, "gdn2_recurrent")) return cuda::gdn2_recurrent(p, in);
#else
  on_cuda(p, "gdn2_recurrent");
#endif
  return cpu::gdn2_recurrent(p, gate_resolved(p, in));
}

Tensor gdn2_recurrent_step(const Gdn2Inputs& in, Tensor& state, const Gdn2Options& opt) {
  const Gdn2Problem p = gdn2_problem(in, opt, "gdn2_recurrent_step");
  gdn2_check_step_state(p, state, "gdn2_recurrent_step");
#ifdef GDN2_WITH_CUDA
  if (on_cuda(p, "gdn2_recurrent_step")) return cuda::gdn2_recurrent_step(p, in, state);
#endif
  return cpu::gdn2_recurrent_step(p, gate_resolved(p, in), state);
}

Gdn2Outputs gdn2_chunk_fwd(const Gdn2Inputs& in, const Gdn2Options& opt) {
  const Gdn2Problem p = gdn2_problem(in, opt, "gdn2_chunk_fwd");
#ifdef GDN2_WITH_CUDA
  if (on_cuda(p, "gdn2_chunk_fwd", opt.compute == DType::f32))
    return cuda::gdn2_chunk_fwd(gates_given(p), logits_resolved(p, in));
#else
  on_cuda(p, "gdn2_chunk_fwd");
#endif
  return cpu::gdn2_chunk_fwd(p, gate_resolved(p, in), opt.compute);
}

Gdn2Grads gdn2_chunk_bwd(const Gdn2Inputs& in, const Gdn2Options& opt, const Tensor& d_o, const Tensor& dht,
                         const Tensor& h, const Tensor& work) {
  const Gdn2Problem p = gdn2_problem(in, opt, "gdn2_chunk_bwd");
  GDN2_CHECK(!work.defined() || h.defined(), ShapeError, "gdn2_chunk_bwd: the forward's work comes with its h");
  gdn2_check_cotangents(p, d_o, dht, "gdn2_chunk_bwd");
  if (h.defined()) {
    GDN2_CHECK(h.shape() == (Shape{p.chunks(), p.HV, p.K, p.V}) && h.device() == p.device &&
                   (h.dtype() == DType::f32 || h.dtype() == DType::f64),
               ShapeError, "gdn2_chunk_bwd: stored chunk states h must be F32/F64 [chunks, HV, K, V] = ",
               shape_str({p.chunks(), p.HV, p.K, p.V}), " for chunk_size ", p.chunk_size,
               " on the inputs' device (the forward's h with chunk_states), got ", h.describe());
  }
#ifdef GDN2_WITH_CUDA
  if (on_cuda(p, "gdn2_chunk_bwd", opt.compute == DType::f32)) {
    GDN2_CHECK(!h.defined() || (p.chunk_size == 64 && h.dtype() == DType::f32), UnsupportedError,
               "gdn2_chunk_bwd: stored states on CUDA must be the F32 states of a chunk_size 64 forward, got ",
               "chunk_size ", p.chunk_size, " and ", h.describe());
    return like_inputs(p, in, gate_grads(p, in, cuda::gdn2_chunk_bwd(p, in, d_o, dht, h, work)));
  }
#else
  on_cuda(p, "gdn2_chunk_bwd");
#endif
  GDN2_CHECK(!work.defined(), ShapeError, "gdn2_chunk_bwd: a forward's work exists only on CUDA; got ", work.describe(),
             " for inputs on the CPU");
  return like_inputs(p, in, gate_grads(p, in, cpu::gdn2_chunk_bwd(p, gate_resolved(p, in), d_o, dht, h, opt.compute)));
}

Gdn2Inputs gdn2_inputs_to(const Gdn2Inputs& in, Device device) {
  Gdn2Inputs d = in;
  for (Tensor* t : {&d.q, &d.k, &d.v, &d.g_log, &d.b, &d.w, &d.h0, &d.A_log, &d.dt_bias})
    if (t->defined() && t->device() != device) *t = t->to(device);
  return d;
}

Gdn2Inputs gdn2_inputs_tokens(const Gdn2Inputs& in, int64_t t0, int64_t count) {
  auto token = [t0, count](const Tensor& x) -> Tensor {
    if (!x.defined()) return x;
    GDN2_CHECK(x.dim() >= 2 && t0 >= 0 && count >= 0 && t0 + count <= x.size(1), ShapeError, "gdn2_inputs_tokens: ",
               "tokens [", t0, ", ", t0 + count, ") of ", x.describe());
    const Tensor c = x.cpu();
    const int64_t B = c.size(0), T = c.size(1), row = c.numel() / std::max<int64_t>(B * T, 1);
    const size_t bytes = static_cast<size_t>(row) * dtype_size(c.dtype());
    Shape s = c.shape();
    s[1] = count;
    Tensor out = Tensor::empty(s, c.dtype());
    for (int64_t b = 0; b < B; ++b)
      std::memcpy(static_cast<std::byte*>(out.raw_mut()) + b * count * bytes,
                  static_cast<const std::byte*>(c.raw()) + (b * T + t0) * bytes, count * bytes);
    return x.is_cpu() ? out : out.to(x.device());
  };
  return Gdn2Inputs{token(in.q), token(in.k), token(in.v), token(in.g_log), token(in.b), token(in.w), Tensor(), Tensor(),
                    in.A_log, in.dt_bias};
}

std::string gdn2_gate_mode_name(const Gdn2Inputs& in) {
  auto form = [](const Tensor& t) -> std::string {
    if (!t.defined()) return "none";
    return t.dim() == 4 ? "channel" : "head";
  };
  const std::string g = form(in.g_log), b = form(in.b), w = form(in.w);
  if (g == "channel" && b == "channel" && w == "channel") return "gdn2";
  if (g == "channel" && b == "head" && w == "head") return "kda";
  if (g == "head" && b == "head" && w == "head") return "gdn";
  if (b == "none") return "ssd";
  return "g:" + g + " b:" + b + " w:" + w;
}

}  // namespace gdn2
