// Validation of GDN-2 inputs against the shape contract, shared by every backend.
#include "ops/gdn2_problem.h"

#include <cmath>

#include "ops/op_args.h"

namespace gdn2 {

namespace {

using op_args::check_float;

// A gate is [B, T, heads, dim] (channel), [B, T, heads] (one per head) or undefined.
GateSpec gate_spec(const Tensor& t, const Gdn2Problem& p, int64_t dim, bool value_heads_only, const char* op,
                   const char* name) {
  GateSpec s;
  if (!t.defined()) return s;
  check_float(t, op, name);
  GDN2_CHECK(t.dim() == 3 || t.dim() == 4, ShapeError, op, ": ", name, " must be [B, T, heads, ", dim,
             "] or [B, T, heads], got ", t.describe());
  GDN2_CHECK(t.size(0) == p.B && t.size(1) == p.T, ShapeError, op, ": ", name, " ", t.describe(),
             " does not match B=", p.B, " T=", p.T);
  s.form = t.dim() == 4 ? GateForm::channel : GateForm::head;
  s.heads = t.size(2);
  if (value_heads_only) {
    GDN2_CHECK(s.heads == p.HV, ShapeError, op, ": ", name, " ", t.describe(), " must have HV=", p.HV, " heads");
  } else {
    GDN2_CHECK(s.heads == p.H || s.heads == p.HV, ShapeError, op, ": ", name, " ", t.describe(),
               " must have H=", p.H, " or HV=", p.HV, " heads");
  }
  if (s.form == GateForm::channel)
    GDN2_CHECK(t.size(3) == dim, ShapeError, op, ": ", name, " ", t.describe(), " last dim must be ", dim);
  return s;
}

}  // namespace

Gdn2Problem gdn2_problem(const Gdn2Inputs& in, const Gdn2Options& opt, const char* op) {
  Gdn2Problem p;
  GDN2_CHECK(in.q.defined() && in.k.defined() && in.v.defined(), ValueError, op, ": q, k and v are required");
  GDN2_CHECK(in.g_log.defined(), ValueError, op, ": g_log is required (pass zeros for no decay)");
  for (auto [t, name] : {std::pair{&in.q, "q"}, {&in.k, "k"}, {&in.v, "v"}}) check_float(*t, op, name);
  GDN2_CHECK(in.q.dim() == 4, ShapeError, op, ": q must be [B, T, H, K], got ", in.q.describe());
  GDN2_CHECK(in.k.shape() == in.q.shape(), ShapeError, op, ": k ", in.k.describe(), " must match q ", in.q.describe());
  GDN2_CHECK(in.v.dim() == 4, ShapeError, op, ": v must be [B, T, HV, V], got ", in.v.describe());
  p.device = in.q.device();
  for (auto [t, name] : {std::pair{&in.k, "k"}, {&in.v, "v"}, {&in.g_log, "g_log"}, {&in.b, "b"}, {&in.w, "w"},
                         {&in.h0, "h0"}})
    GDN2_CHECK(!t->defined() || t->device() == p.device, ShapeError, op, ": ", name, " is on ",
               device_name(t->device()), " but q is on ", device_name(p.device), "; put every input on one device");
  p.B = in.q.size(0);
  p.T = in.q.size(1);
  p.H = in.q.size(2);
  p.K = in.q.size(3);
  p.HV = in.v.size(2);
  p.V = in.v.size(3);
  GDN2_CHECK(in.v.size(0) == p.B && in.v.size(1) == p.T, ShapeError, op, ": v ", in.v.describe(),
             " does not match q ", in.q.describe());
  GDN2_CHECK(p.H > 0 && p.K > 0 && p.V > 0 && p.HV > 0, ShapeError, op, ": empty head or feature dimension (q ",
             in.q.describe(), ", v ", in.v.describe(), ")");
  GDN2_CHECK(p.HV % p.H == 0, ShapeError, op, ": HV=", p.HV, " value heads must be a multiple of H=", p.H, " q/k heads");
  GDN2_CHECK(p.K <= 1024 && p.V <= 1024, UnsupportedError, op, ": head dims K=", p.K, " V=", p.V,
             " above 1024 are not supported");

  p.g = gate_spec(in.g_log, p, p.K, false, op, "g_log");
  p.b = gate_spec(in.b, p, p.K, false, op, "b");
  p.w = gate_spec(in.w, p, p.V, true, op, "w");

  if (in.A_log.defined()) {
    const int64_t per_head = p.g.form == GateForm::channel ? p.K : 1;
    check_float(in.A_log, op, "A_log");
    GDN2_CHECK(in.A_log.dim() == 1 && in.A_log.size(0) == p.g.heads && in.A_log.device() == p.device, ShapeError, op,
               ": A_log must be [", p.g.heads, "] (one per gate head) on the inputs' device, got ", in.A_log.describe());
    if (in.dt_bias.defined()) {
      check_float(in.dt_bias, op, "dt_bias");
      GDN2_CHECK(in.dt_bias.numel() == p.g.heads * per_head && in.dt_bias.device() == p.device &&
                     (in.dt_bias.dim() == 1 || (in.dt_bias.dim() == 2 && in.dt_bias.size(0) == p.g.heads)),
                 ShapeError, op, ": dt_bias must be [", p.g.heads * per_head, "] or [", p.g.heads, ", ", per_head,
                 "] on the inputs' device, got ", in.dt_bias.describe());
    }
    p.gate_in_op = true;
  } else {
    GDN2_CHECK(!in.dt_bias.defined(), ValueError, op, ": dt_bias needs A_log (the in-op decay gate)");
  }

  const std::vector<int64_t> offsets = op_args::seq_offsets(in.cu_seqlens, p.B, p.T, op);
  for (size_t i = 1; i < offsets.size(); ++i) {
    p.seq_start.push_back(offsets[i - 1]);
    p.seq_len.push_back(offsets[i] - offsets[i - 1]);
  }
  p.N = static_cast<int64_t>(p.seq_start.size());

  if (in.h0.defined()) {
    check_float(in.h0, op, "h0");
    GDN2_CHECK(in.h0.shape() == (Shape{p.N, p.HV, p.K, p.V}), ShapeError, op, ": h0 must be [N, HV, K, V] = ",
               shape_str({p.N, p.HV, p.K, p.V}), ", got ", in.h0.describe());
    p.has_h0 = true;
  }

  GDN2_CHECK(std::isfinite(opt.scale) && opt.scale >= 0, ValueError, op, ": scale must be finite and >= 0 (0 = 1/sqrt(K)), got ",
             opt.scale);
  p.scale = opt.scale > 0 ? opt.scale : 1.0 / std::sqrt(static_cast<double>(p.K));
  p.qk_l2norm = opt.qk_l2norm;
  GDN2_CHECK(opt.chunk_size == 16 || opt.chunk_size == 32 || opt.chunk_size == 64, ValueError, op,
             ": chunk_size must be 16, 32 or 64, got ", opt.chunk_size);
  p.chunk_size = opt.chunk_size;
  p.chunk_states = opt.chunk_states;
  p.grads_like_inputs = opt.grads_like_inputs;
  p.gates_logits = opt.gates_logits;
  GDN2_CHECK(opt.compute == DType::f32 || opt.compute == DType::f64, DTypeError, op,
             ": compute precision must be F32 or F64, got ", dtype_name(opt.compute));
  return p;
}

void gdn2_check_step_state(const Gdn2Problem& p, const Tensor& state, const char* op) {
  GDN2_CHECK(p.max_seq_len() <= kGdn2StepMaxTokens, ShapeError, op, ": an in-place step takes at most ",
             kGdn2StepMaxTokens, " tokens per sequence, got ", p.max_seq_len(), " (use the chunk forward with h0)");
  GDN2_CHECK(state.shape() == (Shape{p.N, p.HV, p.K, p.V}) && state.device() == p.device &&
                 (state.dtype() == DType::f32 || (state.dtype() == DType::bf16 && p.device == Device::cuda)),
             ShapeError, op, ": state must be F32[N, HV, K, V] = F32", shape_str({p.N, p.HV, p.K, p.V}),
             " (BF16 allowed on CUDA) on the inputs' device, got ", state.describe());
}

void gdn2_check_cotangents(const Gdn2Problem& p, const Tensor& d_o, const Tensor& dht, const char* op) {
  GDN2_CHECK(!p.gates_logits, ValueError, op, ": the backward takes the gates b and w, not their logits ",
             "(gates_logits is for the forward ops)");
  GDN2_CHECK(d_o.defined(), ValueError, op, ": d_o is required");
  check_float(d_o, op, "d_o");
  GDN2_CHECK(d_o.shape() == (Shape{p.B, p.T, p.HV, p.V}), ShapeError, op, ": d_o must be [B, T, HV, V] = ",
             shape_str({p.B, p.T, p.HV, p.V}), ", got ", d_o.describe());
  if (dht.defined()) {
    check_float(dht, op, "dht");
    GDN2_CHECK(dht.shape() == (Shape{p.N, p.HV, p.K, p.V}), ShapeError, op, ": dht must be [N, HV, K, V] = ",
               shape_str({p.N, p.HV, p.K, p.V}), ", got ", dht.describe());
  }
}

}  // namespace gdn2
