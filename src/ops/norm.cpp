// Public row-norm ops: check the shape contract of include/gdn2/ops/norm.h, then dispatch to the CPU or, for CUDA
// tensors, the CUDA backend (src/cuda/norm.h).
#include "gdn2/ops/norm.h"

#include "cpu/norm.h"
#include "gdn2/ops/dense.h"
#include "ops/op_args.h"
#ifdef GDN2_WITH_CUDA
#include "cuda/norm.h"
#endif

namespace gdn2 {

namespace {

using op_args::check_float;

// x [..., D] with D >= 1; returns D.
int64_t check_rows(const Tensor& x, const char* op, const char* name) {
  GDN2_CHECK(x.defined(), ValueError, op, ": ", name, " is required");
  check_float(x, op, name);
  GDN2_CHECK(x.dim() >= 1 && x.size(-1) >= 1, ShapeError, op, ": ", name, " must be [..., D] with D >= 1, got ",
             x.describe());
  return x.size(-1);
}

void check_same_shape(const Tensor& t, const Tensor& x, const char* op, const char* name, const char* x_name) {
  check_float(t, op, name);
  GDN2_CHECK(t.shape() == x.shape(), ShapeError, op, ": ", name, " must have ", x_name, "'s shape ",
             shape_str(x.shape()), ", got ", t.describe());
}

void check_rstd(const Tensor& rstd, const Tensor& x, const char* op) {
  GDN2_CHECK(rstd.defined(), ValueError, op, ": rstd (from the forward) is required");
  check_float(rstd, op, "rstd");
  GDN2_CHECK(rstd.shape() == op_args::shape_drop_last(x.shape()), ShapeError, op, ": rstd must be ",
             shape_str(op_args::shape_drop_last(x.shape())), " (x without its last dim), got ", rstd.describe());
}

// The GPU backward takes the forward's F32 statistics as they are.
[[maybe_unused]] void check_gpu_rstd(const Tensor& rstd, const char* op) {
  GDN2_CHECK(rstd.dtype() == DType::f32, DTypeError, op, ": rstd must be F32 on the GPU (the forward's), got ",
             rstd.describe());
}

void check_rms_args(const Tensor& x, const Tensor& weight, const Tensor& gate, const RmsNormOptions& opt,
                    const char* op) {
  const int64_t D = check_rows(x, op, "x");
  if (weight.defined()) {
    check_float(weight, op, "weight");
    GDN2_CHECK(weight.shape() == Shape{D}, ShapeError, op, ": weight must be [D] = [", D, "], got ",
               weight.describe());
  }
  if (gate.defined()) check_same_shape(gate, x, op, "gate", "x");
  GDN2_CHECK(opt.gate_activation == NormGateActivation::sigmoid || opt.gate_activation == NormGateActivation::silu,
             ValueError, op, ": unknown gate activation ", static_cast<int>(opt.gate_activation));
}

// [..., D] as [rows, D] in dtype dt (undefined stays undefined).
Tensor as_rows(const Tensor& t, int64_t D, DType dt) {
  if (!t.defined()) return t;
  return op_args::to_dtype(t, dt).reshape({-1, D});
}

}  // namespace

L2NormResult l2_norm_forward(const Tensor& x, double eps) {
  const char* op = "l2_norm_forward";
  const int64_t D = check_rows(x, op, "x");
  op_args::check_eps(eps, op);
  const Shape rstd_shape = op_args::shape_drop_last(x.shape());
  if (op_args::on_cuda(x, {}, {}, {}, op)) {
#ifdef GDN2_WITH_CUDA
    L2NormResult r = cuda::l2_norm_rows(x, eps, x.numel() / D, D);
    return {r.y, r.rstd.reshape(rstd_shape)};
#endif
  }
  L2NormResult r = cpu::l2_norm_forward(as_rows(x, D, op_args::compute_dtype(x)), eps);
  return {r.y.reshape(x.shape()), r.rstd.reshape(rstd_shape)};
}

Tensor l2_norm_backward(const Tensor& dy, const Tensor& y, const Tensor& rstd) {
  const char* op = "l2_norm_backward";
  const int64_t D = check_rows(y, op, "y");
  GDN2_CHECK(dy.defined(), ValueError, op, ": dy is required");
  check_same_shape(dy, y, op, "dy", "y");
  check_rstd(rstd, y, op);
  if (op_args::on_cuda(y, {&rstd}, {&dy}, {}, op)) {
#ifdef GDN2_WITH_CUDA
    check_gpu_rstd(rstd, op);
    return cuda::l2_norm_rows_grad(dy, y, rstd, y.numel() / D, D);
#endif
  }
  const DType dt = op_args::compute_dtype(y);
  const Tensor dx =
      cpu::l2_norm_backward(as_rows(dy, D, dt), as_rows(y, D, dt), op_args::to_dtype(rstd, dt).reshape({-1}));
  return dx.reshape(y.shape());
}

RmsNormResult rms_norm_forward(const Tensor& x, const Tensor& weight, const Tensor& gate, const RmsNormOptions& opt) {
  const char* op = "rms_norm_forward";
  check_rms_args(x, weight, gate, opt, op);
  op_args::check_eps(opt.eps, op);
  const int64_t D = x.size(-1);
  if (op_args::on_cuda(x, {}, {&gate}, {&weight}, op)) {
#ifdef GDN2_WITH_CUDA
    RmsNormResult r = cuda::rms_norm_rows(x, weight, gate, opt, x.numel() / D, D);
    return {r.y, r.rstd.reshape(op_args::shape_drop_last(x.shape()))};
#endif
  }
  const DType dt = op_args::compute_dtype(x);
  RmsNormResult r = cpu::rms_norm_forward(as_rows(x, D, dt), op_args::to_dtype(weight, dt), as_rows(gate, D, dt), opt);
  return {r.y.reshape(x.shape()), r.rstd.reshape(op_args::shape_drop_last(x.shape()))};
}

RmsNormGrads rms_norm_backward(const Tensor& dy, const Tensor& x, const Tensor& rstd, const Tensor& weight,
                               const Tensor& gate, const RmsNormOptions& opt, const Tensor& dres) {
  const char* op = "rms_norm_backward";
  check_rms_args(x, weight, gate, opt, op);
  GDN2_CHECK(dy.defined(), ValueError, op, ": dy is required");
  check_same_shape(dy, x, op, "dy", "x");
  check_rstd(rstd, x, op);
  GDN2_CHECK(!dres.defined() || (dres.shape() == x.shape() && dres.dtype() == x.dtype() && dres.device() == x.device()),
             ShapeError, op, ": dres must have x's shape, dtype and device ", x.describe(), ", got ", dres.describe());
  const int64_t D = x.size(-1);
  if (op_args::on_cuda(x, {&rstd}, {&gate, &dy}, {&weight}, op)) {
#ifdef GDN2_WITH_CUDA
    check_gpu_rstd(rstd, op);
    return cuda::rms_norm_rows_grad(dy, x, rstd, weight, gate, opt, x.numel() / D, D, dres);
#endif
  }
  const DType dt = op_args::compute_dtype(x);
  RmsNormGrads g = cpu::rms_norm_backward(as_rows(dy, D, dt), as_rows(x, D, dt),
                                          op_args::to_dtype(rstd, dt).reshape({-1}), op_args::to_dtype(weight, dt),
                                          as_rows(gate, D, dt), opt);
  g.dx = g.dx.reshape(x.shape());
  if (dres.defined()) add_inplace(g.dx, op_args::to_dtype(dres, g.dx.dtype()));
  if (g.dgate.defined()) g.dgate = g.dgate.reshape(gate.shape());
  return g;
}

}  // namespace gdn2
