// Public decay-gate ops: check the shape contract of include/gdn2/ops/decay_gate.h, then dispatch.
#include "gdn2/ops/decay_gate.h"

#include "cpu/decay_gate.h"
#include "ops/op_args.h"
#ifdef GDN2_WITH_CUDA
#include "cuda/decay_gate.h"
#endif

namespace gdn2 {

namespace {

using op_args::check_float;

// Checks f, A_log, dt_bias and head_dim against the contract; returns H·K.
int64_t check_gate_args(const Tensor& f, const Tensor& A_log, const Tensor& dt_bias, int64_t K, const char* op) {
  GDN2_CHECK(f.defined() && A_log.defined(), ValueError, op, ": f and A_log are required");
  check_float(f, op, "f");
  check_float(A_log, op, "A_log");
  check_float(dt_bias, op, "dt_bias");
  GDN2_CHECK(K >= 1, ValueError, op, ": head_dim must be >= 1, got ", K);
  GDN2_CHECK(A_log.dim() == 1 && A_log.size(0) >= 1, ShapeError, op, ": A_log must be [H] with H >= 1, got ",
             A_log.describe());
  const int64_t H = A_log.size(0);
  const bool split = f.dim() >= 2 && f.size(-2) == H && f.size(-1) == K;
  const bool flat = f.dim() >= 1 && f.size(-1) == H * K;
  GDN2_CHECK(split || flat, ShapeError, op, ": f must be [..., H, K] or [..., H*K] with H=", H, " (A_log) and K=", K,
             " (head_dim), got ", f.describe());
  if (dt_bias.defined())
    GDN2_CHECK(dt_bias.shape() == Shape{H * K} || dt_bias.shape() == (Shape{H, K}), ShapeError, op,
               ": dt_bias must be [H*K] = [", H * K, "] or [H, K] = ", shape_str({H, K}), ", got ", dt_bias.describe());
  return H * K;
}

// dt_bias as [H·K] in dtype dt; undefined stays undefined.
Tensor flat_bias(const Tensor& dt_bias, int64_t HK, DType dt) {
  return dt_bias.defined() ? op_args::to_dtype(dt_bias, dt).reshape({HK}) : dt_bias;
}

}  // namespace

Tensor decay_gate_forward(const Tensor& f, const Tensor& A_log, const Tensor& dt_bias, int64_t head_dim) {
  const int64_t HK = check_gate_args(f, A_log, dt_bias, head_dim, "decay_gate_forward");
  const DType dt = op_args::compute_dtype(f);
  const Tensor g = cpu::decay_gate_forward(op_args::to_dtype(f, dt).reshape({-1, HK}), op_args::to_dtype(A_log, dt),
                                           flat_bias(dt_bias, HK, dt), head_dim);
  return g.reshape(f.shape());
}

DecayGateGrads decay_gate_backward(const Tensor& dg, const Tensor& f, const Tensor& A_log, const Tensor& dt_bias,
                                   int64_t head_dim, bool df_like_f) {
  const char* op = "decay_gate_backward";
  const int64_t HK = check_gate_args(f, A_log, dt_bias, head_dim, op);
  GDN2_CHECK(dg.defined(), ValueError, op, ": dg is required");
  check_float(dg, op, "dg");
  GDN2_CHECK(dg.shape() == f.shape(), ShapeError, op, ": dg must have f's shape ", shape_str(f.shape()), ", got ",
             dg.describe());
  for (const Tensor* t : {&dg, &A_log, &dt_bias})
    GDN2_CHECK(!t->defined() || t->device() == f.device(), ShapeError, op,
               ": dg, A_log and dt_bias must be on f's device, got ", t->describe());
  if (f.device() != Device::cpu) {  // CUDA tensors: the GPU backward (F32)
#ifdef GDN2_WITH_CUDA
    GDN2_CHECK(f.dtype() != DType::f64, UnsupportedError, op, " on CUDA computes in F32: f must not be F64");
    DecayGateGrads g = cuda::decay_gate_backward(dg.reshape({-1, HK}), f.reshape({-1, HK}), A_log,
                                                 dt_bias.defined() ? dt_bias.reshape({HK}) : dt_bias, head_dim,
                                                 df_like_f ? f.dtype() : DType::f32);
    g.df = g.df.reshape(f.shape());
    if (g.ddt_bias.defined()) g.ddt_bias = g.ddt_bias.reshape(dt_bias.shape());
    return g;
#else
    GDN2_THROW(UnsupportedError, op, ": CUDA tensors need a build with the CUDA backend");
#endif
  }
  const DType dt = op_args::compute_dtype(f);
  DecayGateGrads g = cpu::decay_gate_backward(
      op_args::to_dtype(dg, dt).reshape({-1, HK}), op_args::to_dtype(f, dt).reshape({-1, HK}),
      op_args::to_dtype(A_log, dt), flat_bias(dt_bias, HK, dt), head_dim);
  g.df = g.df.reshape(f.shape());
  if (df_like_f && g.df.dtype() != f.dtype()) g.df = g.df.to(f.dtype());
  if (g.ddt_bias.defined()) g.ddt_bias = g.ddt_bias.reshape(dt_bias.shape());
  return g;
}

}  // namespace gdn2
