// Public short causal convolution ops: check the shape contract of include/gdn2/ops/short_conv.h, then dispatch to the
// CPU or, for CUDA tensors, the CUDA backend (src/cuda/short_conv.h).
#include "gdn2/ops/short_conv.h"

#include <vector>

#include "cpu/short_conv.h"
#include "gdn2/ops/dense.h"
#include "ops/op_args.h"
#ifdef GDN2_WITH_CUDA
#include "cuda/short_conv.h"
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

// A forward/backward call's sizes, checked against the contract: x [B, T, C], weight [C, W] or [C, 1, W], bias [C],
// cu_seqlens (either device: its values are checked on the host), initial_cache [N, C, W − 1].
struct ConvShape {
  int64_t B = 0, T = 0, C = 0, W = 0;
  std::vector<int64_t> offsets;  // N + 1 row offsets
  int64_t N() const { return static_cast<int64_t>(offsets.size()) - 1; }
};

ConvShape check_conv(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& cu_seqlens,
                     const Tensor& initial_cache, const char* op) {
  GDN2_CHECK(x.defined(), ValueError, op, ": x is required");
  check_float(x, op, "x");
  GDN2_CHECK(x.dim() == 3, ShapeError, op, ": x must be [B, T, C] (or [1, Ttot, C] with cu_seqlens), got ",
             x.describe());
  ConvShape s;
  s.B = x.size(0);
  s.T = x.size(1);
  s.C = x.size(2);
  s.W = check_weight(weight, s.C, op);
  check_bias(bias, s.C, op);
  s.offsets = op_args::seq_offsets(cu_seqlens.defined() ? cu_seqlens.cpu() : cu_seqlens, s.B, s.T, op);
  check_cache(initial_cache, s.N(), s.C, s.W, op, "initial_cache");
  return s;
}

// A checked call in the CPU's compute dtype.
cpu::ShortConvArgs cpu_args(const Tensor& x, const Tensor& weight, const Tensor& bias, ConvActivation activation,
                            const Tensor& initial_cache, const ConvShape& s) {
  cpu::ShortConvArgs a;
  const DType dt = op_args::compute_dtype(x);
  a.x = op_args::to_dtype(x, dt).reshape({s.B * s.T, s.C});
  a.weight = op_args::to_dtype(weight, dt).reshape({s.C, s.W});
  a.bias = op_args::to_dtype(bias, dt);
  a.initial_cache = op_args::to_dtype(initial_cache, dt);
  a.seq_offsets = s.offsets;
  a.activation = activation;
  return a;
}

#ifdef GDN2_WITH_CUDA
// A checked call on GPU tensors as rows; packed sequences' offsets on the GPU as I64 (a GPU I64 cu_seqlens as it is).
cuda::ShortConvCall gpu_call(const Tensor& x, const Tensor& weight, const Tensor& bias, ConvActivation activation,
                             const Tensor& cu_seqlens, const Tensor& initial_cache, const ConvShape& s) {
  cuda::ShortConvCall k;
  k.x = x.reshape({s.B * s.T, s.C});
  k.weight = weight.reshape({s.C, s.W});
  k.bias = bias;
  k.initial_cache = initial_cache;
  if (cu_seqlens.defined())
    k.seq_offsets = cu_seqlens.dtype() == DType::i64 && !cu_seqlens.is_cpu()
                        ? cu_seqlens
                        : Tensor::from_vector<int64_t>({s.N() + 1}, s.offsets).to(Device::cuda);
  k.N = s.N();
  k.T = s.T;
  k.activation = activation;
  return k;
}
#endif

}  // namespace

ShortConvResult short_conv_forward(const Tensor& x, const Tensor& weight, const Tensor& bias,
                                   ConvActivation activation, const Tensor& cu_seqlens, const Tensor& initial_cache,
                                   bool output_final_cache) {
  const char* op = "short_conv_forward";
  const ConvShape s = check_conv(x, weight, bias, cu_seqlens, initial_cache, op);
  if (op_args::on_cuda(x, {}, {}, {&weight, &bias, &initial_cache}, op)) {
#ifdef GDN2_WITH_CUDA
    ShortConvResult r =
        cuda::short_conv_apply(gpu_call(x, weight, bias, activation, cu_seqlens, initial_cache, s), output_final_cache);
    r.y = r.y.reshape(x.shape());
    return r;
#endif
  }
  ShortConvResult r = cpu::short_conv_forward(cpu_args(x, weight, bias, activation, initial_cache, s), output_final_cache);
  r.y = r.y.reshape(x.shape());
  return r;
}

ShortConvGrads short_conv_backward(const Tensor& dy, const Tensor& x, const Tensor& weight, const Tensor& bias,
                                   ConvActivation activation, const Tensor& cu_seqlens, const Tensor& initial_cache,
                                   const Tensor& d_final_cache) {
  const char* op = "short_conv_backward";
  const ConvShape s = check_conv(x, weight, bias, cu_seqlens, initial_cache, op);
  GDN2_CHECK(dy.defined(), ValueError, op, ": dy is required");
  check_float(dy, op, "dy");
  GDN2_CHECK(dy.shape() == x.shape(), ShapeError, op, ": dy must have x's shape ", shape_str(x.shape()), ", got ",
             dy.describe());
  check_cache(d_final_cache, s.N(), s.C, s.W, op, "d_final_cache");
  ShortConvGrads g;
  if (op_args::on_cuda(x, {}, {&dy}, {&weight, &bias, &initial_cache, &d_final_cache}, op)) {
#ifdef GDN2_WITH_CUDA
    g = cuda::short_conv_grad(gpu_call(x, weight, bias, activation, cu_seqlens, initial_cache, s),
                              dy.reshape({s.B * s.T, s.C}), d_final_cache);
#endif
  } else {
    const cpu::ShortConvArgs a = cpu_args(x, weight, bias, activation, initial_cache, s);
    g = cpu::short_conv_backward(a, op_args::to_dtype(dy, a.x.dtype()).reshape({s.B * s.T, s.C}),
                                 op_args::to_dtype(d_final_cache, a.x.dtype()));
  }
  g.dx = g.dx.reshape(x.shape());
  g.dweight = g.dweight.reshape(weight.shape());
  return g;
}

std::vector<Tensor> short_conv_step_split(const Tensor& x, Tensor& cache, const Tensor& weight, const Tensor& bias,
                                          ConvActivation activation, const std::vector<int64_t>& sizes) {
  const char* op = "short_conv_step";
  GDN2_CHECK(x.defined(), ValueError, op, ": x is required");
  check_float(x, op, "x");
  GDN2_CHECK(x.dim() == 2, ShapeError, op, ": x must be [N, C] (one token per sequence), got ", x.describe());
  const int64_t N = x.size(0), C = x.size(1);
  const int64_t W = check_weight(weight, C, op);
  check_bias(bias, C, op);
  GDN2_CHECK(cache.defined(), ValueError, op, ": cache is required (zeros for a fresh sequence)");
  check_cache(cache, N, C, W, op, "cache");
  GDN2_CHECK(!cache.read_only(), ValueError, op, ": cache ", cache.describe(), " is a read-only view");
  int64_t total = 0;
  for (int64_t s : sizes) {
    GDN2_CHECK(s >= 0, ShapeError, op, ": a part of ", s, " channels");
    total += s;
  }
  GDN2_CHECK(!sizes.empty() && total == C, ShapeError, op, ": the parts' sizes must sum to C=", C, ", got ",
             shape_str(sizes));
  if (op_args::on_cuda(x, {&cache}, {}, {&weight, &bias, &cache}, op)) {  // the cache: F32 or x's dtype
#ifdef GDN2_WITH_CUDA
    GDN2_CHECK(sizes.size() <= static_cast<size_t>(kShortConvStepMaxParts), UnsupportedError, op, ": at most ",
               kShortConvStepMaxParts, " parts on CUDA, got ", sizes.size());
    return cuda::short_conv_decode(x, cache, weight.reshape({C, W}), bias, activation, sizes);
#endif
  }
  GDN2_CHECK(cache.dtype() == DType::f32 || cache.dtype() == DType::f64, DTypeError, op,
             ": cache must be F32 or F64, got ", cache.describe());
  const DType dt = op_args::compute_dtype(x);
  const Tensor xc = op_args::to_dtype(x, dt);
  const Tensor wc = op_args::to_dtype(weight, dt).reshape({C, W});
  const Tensor bc = op_args::to_dtype(bias, dt);
  Tensor y;
  if (cache.dtype() == dt) {
    y = cpu::short_conv_step(xc, cache, wc, bc, activation);
  } else {
    Tensor work = cache.to(dt);  // the cache keeps its own dtype; compute in x's
    y = cpu::short_conv_step(xc, work, wc, bc, activation);
    dtype_convert(work.raw(), dt, cache.raw_mut(), cache.dtype(), static_cast<size_t>(cache.numel()));
  }
  if (sizes.size() == 1) return {y};
  return split_last(y, sizes);
}

Tensor short_conv_step(const Tensor& x, Tensor& cache, const Tensor& weight, const Tensor& bias,
                       ConvActivation activation) {
  GDN2_CHECK(x.defined(), ValueError, "short_conv_step: x is required");
  GDN2_CHECK(x.dim() == 2, ShapeError, "short_conv_step: x must be [N, C] (one token per sequence), got ",
             x.describe());
  return short_conv_step_split(x, cache, weight, bias, activation, {x.size(1)})[0];
}

}  // namespace gdn2
