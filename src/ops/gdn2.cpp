// Public GDN-2 ops: validate the shape contract once, then dispatch to a backend.
#include "gdn2/ops/gdn2.h"

#include "cpu/gdn2.h"
#include "ops/gdn2_problem.h"

namespace gdn2 {

Gdn2Outputs gdn2_recurrent_ref(const Gdn2Inputs& in, const Gdn2Options& opt) {
  return cpu::gdn2_recurrent_ref(gdn2_problem(in, opt, "gdn2_recurrent_ref"), in);
}

Gdn2Grads gdn2_recurrent_ref_bwd(const Gdn2Inputs& in, const Gdn2Options& opt, const Tensor& d_o, const Tensor& dht) {
  const Gdn2Problem p = gdn2_problem(in, opt, "gdn2_recurrent_ref_bwd");
  gdn2_check_cotangents(p, d_o, dht, "gdn2_recurrent_ref_bwd");
  return cpu::gdn2_recurrent_ref_bwd(p, in, d_o, dht);
}

Gdn2Outputs gdn2_recurrent(const Gdn2Inputs& in, const Gdn2Options& opt) {
  return cpu::gdn2_recurrent(gdn2_problem(in, opt, "gdn2_recurrent"), in);
}

Tensor gdn2_recurrent_step(const Gdn2Inputs& in, Tensor& state, const Gdn2Options& opt) {
  const Gdn2Problem p = gdn2_problem(in, opt, "gdn2_recurrent_step");
  GDN2_CHECK(p.T == 1 && !in.cu_seqlens.defined(), ShapeError,
             "gdn2_recurrent_step: one token per sequence ([B, 1, ...], no cu_seqlens), got q ", in.q.describe());
  GDN2_CHECK(state.dtype() == DType::f32 && state.shape() == (Shape{p.B, p.HV, p.K, p.V}), ShapeError,
             "gdn2_recurrent_step: state must be F32[B, HV, K, V] = F32", shape_str({p.B, p.HV, p.K, p.V}), ", got ",
             state.describe());
  return cpu::gdn2_recurrent_step(p, in, state);
}

Gdn2Outputs gdn2_chunk_fwd(const Gdn2Inputs& in, const Gdn2Options& opt) {
  return cpu::gdn2_chunk_fwd(gdn2_problem(in, opt, "gdn2_chunk_fwd"), in, opt.compute);
}

Gdn2Grads gdn2_chunk_bwd(const Gdn2Inputs& in, const Gdn2Options& opt, const Tensor& d_o, const Tensor& dht) {
  const Gdn2Problem p = gdn2_problem(in, opt, "gdn2_chunk_bwd");
  gdn2_check_cotangents(p, d_o, dht, "gdn2_chunk_bwd");
  return cpu::gdn2_chunk_bwd(p, in, d_o, dht, opt.compute);
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
