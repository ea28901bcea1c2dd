// Public attention ops: check the shape contract of include/gdn2/ops/attention.h, then dispatch.
#include "gdn2/ops/attention.h"

#include <cmath>

#include "cpu/attention.h"
#include "ops/op_args.h"
#ifdef GDN2_WITH_CUDA
#include "cuda/attention.h"
#endif

namespace gdn2 {

namespace {

using op_args::check_float;

void check_required(const Tensor& t, const char* op, const char* name) {
  GDN2_CHECK(t.defined(), ValueError, op, ": ", name, " is required");
  check_float(t, op, name);
}

// Validates q, k, v and the options; returns them in the compute dtype with the scale resolved.
cpu::AttentionArgs attention_args(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionOptions& opt,
                                  const char* op) {
  check_required(q, op, "q");
  check_required(k, op, "k");
  check_required(v, op, "v");
  // On the GPU (src/cuda/attention.h): q, k, v share one dtype, F32, BF16 or F16, and the head dim is at most 256.
  if (op_args::on_cuda(q, {}, {&k, &v}, {}, op)) {
#ifdef GDN2_WITH_CUDA
    GDN2_CHECK(q.dim() != 4 || q.size(3) <= cuda::kAttentionMaxHeadDim, UnsupportedError, op,
               " on CUDA: head dim at most ", cuda::kAttentionMaxHeadDim, ", got ", q.describe());
#endif
  }
  GDN2_CHECK(q.dim() == 4, ShapeError, op, ": q must be [B, Tq, Hq, D], got ", q.describe());
  GDN2_CHECK(k.dim() == 4, ShapeError, op, ": k must be [B, Tk, Hkv, D], got ", k.describe());
  const int64_t B = q.size(0), Tq = q.size(1), Hq = q.size(2), D = q.size(3), Tk = k.size(1), Hkv = k.size(2);
  GDN2_CHECK(D >= 1 && Hkv >= 1 && Hq >= 1, ShapeError, op, ": heads and head dim must be >= 1, got q ",
             q.describe(), ", k ", k.describe());
  GDN2_CHECK(k.size(0) == B && k.size(3) == D, ShapeError, op, ": k must be [B, Tk, Hkv, D] with q's B = ", B,
             " and D = ", D, ", got q ", q.describe(), ", k ", k.describe());
  GDN2_CHECK(v.shape() == k.shape(), ShapeError, op, ": v must have k's shape ", shape_str(k.shape()), ", got ",
             v.describe());
  GDN2_CHECK(Hq % Hkv == 0, ShapeError, op, ": the query heads Hq = ", Hq, " must be a multiple of the kv heads Hkv = ",
             Hkv, " (q ", q.describe(), ", k ", k.describe(), ")");
  GDN2_CHECK(Tq <= Tk, ShapeError, op, ": q cannot have more positions than k (Tq = ", Tq, " > Tk = ", Tk, "; q ",
             q.describe(), ", k ", k.describe(), ")");
  GDN2_CHECK(std::isfinite(opt.scale) && opt.scale >= 0, ValueError, op,
             ": scale must be finite and >= 0 (0 means 1/sqrt(D)), got ", opt.scale);
  GDN2_CHECK(opt.window >= 0, ValueError, op, ": window must be >= 0 (0 means full causal), got ", opt.window);
  cpu::AttentionArgs a;
  a.scale = opt.scale == 0 ? 1.0 / std::sqrt(static_cast<double>(D)) : opt.scale;
  a.window = opt.window;
  if (!q.is_cpu()) {  // the GPU reads the inputs as they are (validated by on_cuda)
    a.q = q;
    a.k = k;
    a.v = v;
    return a;
  }
  const DType dt = op_args::compute_dtype(q);
  a.q = op_args::to_dtype(q, dt);
  a.k = op_args::to_dtype(k, dt);
  a.v = op_args::to_dtype(v, dt);
  return a;
}

}  // namespace

AttentionResult attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionOptions& options) {
  const cpu::AttentionArgs a = attention_args(q, k, v, options, "attention_forward");
  if (!q.is_cpu()) {
#ifdef GDN2_WITH_CUDA
    return cuda::attention_forward(a.q, a.k, a.v, a.scale, a.window, options.repeated_shape);
#endif
  }
  return cpu::attention_forward(a);
}

AttentionGrads attention_backward(const Tensor& d_o, const Tensor& q, const Tensor& k, const Tensor& v,
                                  const Tensor& o, const Tensor& lse, const AttentionOptions& options) {
  const char* op = "attention_backward";
  check_required(d_o, op, "do");
  check_required(o, op, "o");
  check_required(lse, op, "lse");
  // Every tensor on q's device; on the GPU do and o in q's dtype (lse is checked below, after its shape).
  const bool gpu = op_args::on_cuda(q, {&lse}, {&k, &v, &d_o, &o}, {}, op);
  const cpu::AttentionArgs a = attention_args(q, k, v, options, op);
  GDN2_CHECK(d_o.shape() == q.shape(), ShapeError, op, ": do must have q's shape ", shape_str(q.shape()), ", got ",
             d_o.describe());
  GDN2_CHECK(o.shape() == q.shape(), ShapeError, op, ": o must have q's shape ", shape_str(q.shape()), ", got ",
             o.describe());
  const Shape lse_shape{q.size(0), q.size(2), q.size(1)};
  GDN2_CHECK(lse.shape() == lse_shape, ShapeError, op, ": lse must be [B, Hq, Tq] = ", shape_str(lse_shape),
             ", got ", lse.describe());
  if (gpu) {
    GDN2_CHECK(lse.dtype() == DType::f32, DTypeError, op, ": lse must be F32 on the GPU, got ", lse.describe());
#ifdef GDN2_WITH_CUDA
    return cuda::attention_backward(d_o, q, k, v, o, lse, a.scale, a.window, options.repeated_shape);
#endif
  }
  const DType dt = a.q.dtype();
  return cpu::attention_backward(a, op_args::to_dtype(d_o, dt), op_args::to_dtype(o, dt), op_args::to_dtype(lse, dt));
}

}  // namespace gdn2
