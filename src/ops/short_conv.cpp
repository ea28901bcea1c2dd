// Public short causal convolution ops: check the shape contract of include/gdn2/ops/short_conv.h, then dispatch.
#include "gdn2/ops/short_conv.h"

#include "cpu/short_conv.h"
#include "ops/op_args.h"
#ifdef GDN2_WITH_CUDA
#include "cuda/model_ops.h"
#endif

namespace gdn2 {

namespace {

using op_args::check_float;

// weight [C, W] or [C, 1, W]; returns W.
int64_t check_weight(const Tensor& weight, int64_t C, const char* op) {
  GDN2_CHECK(weight.defined(), ValueError, op, ": weight is required");
  check_float(weight, op, "weight");
  const bool ok = (weight.dim() == 2 && weight.size(0) == C) ||
                  (weight.dim() == 3 && weight.size(0) == C && weight.size(1) == 1);
  GDN2_CHECK(ok, ShapeError, op, ": weight must be [C, W] or [C, 1, W] with C=", C, ", got ", weight.describe());
  const int64_t W = weight.size(-1);
  GDN2_CHECK(W >= 1, ShapeError, op, ": the kernel size W (weight's last dim) must be >= 1, got ", weight.describe());
  return W;
}

void check_bias(const Tensor& bias, int64_t C, const char* op) {
  if (!bias.defined()) return;
  check_float(bias, op, "bias");
  GDN2_CHECK(bias.shape() == Shape{C}, ShapeError, op, ": bias must be [C] = [", C, "], got ", bias.describe());
}

void check_cache(const Tensor& cache, int64_t N, int64_t C, int64_t W, const char* op, const char* name) {
  if (!cache.defined()) return;
  check_float(cache, op, name);
  GDN2_CHECK(cache.shape() == (Shape{N, C, W - 1}), ShapeError, op, ": ", name, " must be [N, C, W - 1] = ",
             shape_str({N, C, W - 1}), ", got ", cache.describe());
}

// Validates a forward/backward call and converts it to the compute dtype.
cpu::ShortConvArgs conv_args(const Tensor& x, const Tensor& weight, const Tensor& bias, ConvActivation activation,
                             const Tensor& cu_seqlens, const Tensor& initial_cache, const char* op) {
  GDN2_CHECK(x.defined(), ValueError, op, ": x is required");
  check_float(x, op, "x");
  GDN2_CHECK(x.dim() == 3, ShapeError, op, ": x must be [B, T, C] (or [1, Ttot, C] with cu_seqlens), got ",
             x.describe());
  const int64_t B = x.size(0), T = x.size(1), C = x.size(2);
  const int64_t W = check_weight(weight, C, op);
  check_bias(bias, C, op);
  cpu::ShortConvArgs a;
  a.seq_offsets = op_args::seq_offsets(cu_seqlens, B, T, op);
  const int64_t N = static_cast<int64_t>(a.seq_offsets.size()) - 1;
  check_cache(initial_cache, N, C, W, op, "initial_cache");
  const DType dt = op_args::compute_dtype(x);
  a.x = op_args::to_dtype(x, dt).reshape({B * T, C});
  a.weight = op_args::to_dtype(weight, dt).reshape({C, W});
  a.bias = op_args::to_dtype(bias, dt);
  a.initial_cache = op_args::to_dtype(initial_cache, dt);
  a.activation = activation;
  return a;
}

// Whether a forward/backward call runs on the GPU; then validates it there (no packed sequences on the GPU).
bool conv_on_cuda(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& cu_seqlens,
                  const Tensor& initial_cache, const char* op) {
  GDN2_CHECK(x.defined(), ValueError, op, ": x is required");
  if (!op_args::on_cuda(x, {&cu_seqlens}, {}, {&weight, &bias, &initial_cache}, op)) return false;
  GDN2_CHECK(x.dim() == 3, ShapeError, op, ": x must be [B, T, C], got ", x.describe());
  GDN2_CHECK(!cu_seqlens.defined(), UnsupportedError, op, " on CUDA: packed sequences (cu_seqlens) are CPU-only");
  const int64_t C = x.size(2), W = check_weight(weight, C, op);
  check_bias(bias, C, op);
  check_cache(initial_cache, x.size(0), C, W, op, "initial_cache");
  return true;
}

}  // namespace

ShortConvResult short_conv_forward(const Tensor& x, const Tensor& weight, const Tensor& bias,
                                   ConvActivation activation, const Tensor& cu_seqlens, const Tensor& initial_cache,
                                   bool output_final_cache) {
  if (conv_on_cuda(x, weight, bias, cu_seqlens, initial_cache, "short_conv_forward")) {
#ifdef GDN2_WITH_CUDA
    return cuda::short_conv_forward(x, weight, bias, activation, initial_cache, output_final_cache);
#endif
  }
  const cpu::ShortConvArgs a =
      conv_args(x, weight, bias, activation, cu_seqlens, initial_cache, "short_conv_forward");
  ShortConvResult r = cpu::short_conv_forward(a, output_final_cache);
  r.y = r.y.reshape(x.shape());
  return r;
}

ShortConvGrads short_conv_backward(const Tensor& dy, const Tensor& x, const Tensor& weight, const Tensor& bias,
                                   ConvActivation activation, const Tensor& cu_seqlens, const Tensor& initial_cache,
                                   const Tensor& d_final_cache) {
  const char* op = "short_conv_backward";
  if (conv_on_cuda(x, weight, bias, cu_seqlens, initial_cache, op)) {
#ifdef GDN2_WITH_CUDA
    GDN2_CHECK(dy.defined() && dy.shape() == x.shape() && dy.dtype() == x.dtype() && !dy.is_cpu(), ShapeError, op,
               ": dy must be like x ", x.describe(), ", got ", dy.describe());
    return cuda::short_conv_backward(dy, x, weight, bias, activation, initial_cache, d_final_cache);
#endif
  }
  const cpu::ShortConvArgs a = conv_args(x, weight, bias, activation, cu_seqlens, initial_cache, op);
  GDN2_CHECK(dy.defined(), ValueError, op, ": dy is required");
  check_float(dy, op, "dy");
  GDN2_CHECK(dy.shape() == x.shape(), ShapeError, op, ": dy must have x's shape ", shape_str(x.shape()), ", got ",
             dy.describe());
  const int64_t N = static_cast<int64_t>(a.seq_offsets.size()) - 1, C = a.weight.size(0), W = a.weight.size(1);
  check_cache(d_final_cache, N, C, W, op, "d_final_cache");
  const DType dt = a.x.dtype();
  ShortConvGrads g = cpu::short_conv_backward(a, op_args::to_dtype(dy, dt).reshape({a.x.size(0), C}),
                                              op_args::to_dtype(d_final_cache, dt));
  g.dx = g.dx.reshape(x.shape());
  g.dweight = g.dweight.reshape(weight.shape());
  return g;
}

Tensor short_conv_step(const Tensor& x, Tensor& cache, const Tensor& weight, const Tensor& bias,
                       ConvActivation activation) {
  const char* op = "short_conv_step";
  GDN2_CHECK(x.defined(), ValueError, op, ": x is required");
  check_float(x, op, "x");
  GDN2_CHECK(x.dim() == 2, ShapeError, op, ": x must be [N, C] (one token per sequence), got ", x.describe());
  const int64_t N = x.size(0), C = x.size(1);
  const int64_t W = check_weight(weight, C, op);
  check_bias(bias, C, op);
  GDN2_CHECK(cache.defined(), ValueError, op, ": cache is required (zeros for a fresh sequence)");
  GDN2_CHECK(cache.dtype() == DType::f32 || cache.dtype() == DType::f64, DTypeError, op,
             ": cache must be F32 or F64, got ", cache.describe());
  check_cache(cache, N, C, W, op, "cache");
  GDN2_CHECK(!cache.read_only(), ValueError, op, ": cache ", cache.describe(), " is a read-only view");
  if (op_args::on_cuda(x, {&cache}, {}, {&weight, &bias}, op)) {
#ifdef GDN2_WITH_CUDA
    GDN2_CHECK(cache.dtype() == DType::f32, DTypeError, op, ": the cache must be F32 on the GPU, got ",
               cache.describe());
    return cuda::short_conv_step(x, cache, weight, bias, activation);
#endif
  }
  const DType dt = op_args::compute_dtype(x);
  const Tensor xc = op_args::to_dtype(x, dt);
  const Tensor wc = op_args::to_dtype(weight, dt).reshape({C, W});
  const Tensor bc = op_args::to_dtype(bias, dt);
  if (cache.dtype() == dt) return cpu::short_conv_step(xc, cache, wc, bc, activation);
  Tensor work = cache.to(dt);  // the cache keeps its own dtype; compute in x's
  Tensor y = cpu::short_conv_step(xc, work, wc, bc, activation);
  dtype_convert(work.raw(), dt, cache.raw_mut(), cache.dtype(), static_cast<size_t>(cache.numel()));
  return y;
}

}  // namespace gdn2
