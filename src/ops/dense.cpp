// Dense ops: shape contracts and dispatch to the CPU kernels or, for CUDA tensors, the CUDA backend (src/cuda: dense,
// elementwise, embedding, cross_entropy); the CPU elementwise ops are small enough to live here.
#include "gdn2/ops/dense.h"

#include <cmath>
#include <cstdint>

#include <algorithm>
#include <cstring>
#include <initializer_list>
#include <utility>
#include <vector>

#include "cpu/dense.h"
#include "cpu/elementwise.h"
#include "ops/op_args.h"
#ifdef GDN2_WITH_CUDA
#include "cuda/cross_entropy.h"
#include "cuda/dense.h"
#include "cuda/elementwise.h"
#include "cuda/embedding.h"
#endif

namespace gdn2 {

namespace {

void check_compute(const Tensor& t, const char* op, const char* name) {
  GDN2_CHECK(t.defined(), ValueError, op, ": ", name, " is required");
  GDN2_CHECK(t.dtype() == DType::f32 || t.dtype() == DType::f64, DTypeError, op, ": ", name,
             " must be F32 or F64, got ", t.describe());
}
void check_same(const Tensor& a, const Tensor& b, const char* op, const char* an, const char* bn) {
  check_compute(b, op, bn);
  GDN2_CHECK(a.dtype() == b.dtype(), DTypeError, op, ": ", an, " ", a.describe(), " and ", bn, " ", b.describe(),
             " must share a dtype");
}
void check_grad(const Tensor* g, const Tensor& like, const char* op, const char* name) {
  if (g == nullptr) return;
  GDN2_CHECK(g->defined() && g->dtype() == like.dtype() && g->shape() == like.shape(), ShapeError, op, ": gradient ",
             name, " must be ", like.describe(), ", got ", g->describe());
}
Shape with_last(const Shape& s, int64_t last) {
  Shape r = s;
  r.back() = last;
  return r;
}

// Whether a linear call runs on the GPU: x on CUDA, every other tensor there too, in x's dtype (F32, BF16 or F16),
// the parameter gradients in F32 or x's dtype (fp32 master gradients of low-precision layers). CPU tensors take the
// CPU checks.
bool linear_on_cuda(const Tensor& x, std::initializer_list<std::pair<const Tensor*, const char*>> same,
                    std::initializer_list<std::pair<const Tensor*, const char*>> grads, const char* op, int64_t in,
                    int64_t out) {
  GDN2_CHECK(x.defined(), ValueError, op, ": x is required");
  const Device dev = x.device();
  for (const auto& list : {same, grads})
    for (const auto& [t, name] : list)
      GDN2_CHECK(t == nullptr || !t->defined() || t->device() == dev, ShapeError, op, ": ", name, " is on another device than x (",
                 t->describe(), ")");
  if (dev != Device::cuda) return false;
#ifdef GDN2_WITH_CUDA
  GDN2_CHECK(x.dtype() == DType::f32 || x.dtype() == DType::bf16 || x.dtype() == DType::f16, DTypeError, op,
             ": x must be F32, BF16 or F16 on the GPU, got ", x.describe());
  for (const auto& [t, name] : same)
    GDN2_CHECK(t == nullptr || !t->defined() || t->dtype() == x.dtype(), DTypeError, op, ": ", name, " ",
               t->describe(), " must have x's dtype ", dtype_name(x.dtype()));
  for (const auto& [t, name] : grads)
    GDN2_CHECK(t == nullptr || t->dtype() == DType::f32 || t->dtype() == x.dtype(), DTypeError, op, ": gradient ",
               name, " must be F32 or x's dtype, got ", t->describe());
  GDN2_CHECK(in > 0 && out > 0, ShapeError, op, " on CUDA: in and out features must be positive, got ", in, " and ",
             out);
  return true;
#else
  GDN2_THROW(UnsupportedError, op, ": CUDA tensors need a build with the CUDA backend");
#endif
}

template <class F>
auto by_dtype(DType dt, F&& f) {
  return dt == DType::f64 ? f(double{}) : f(float{});
}

// ids (I32 or I64, either device: GPU ids are copied down, which waits for them) as host values, each checked in
// [0, V) (ValueError naming op).
std::vector<int64_t> host_ids(const Tensor& ids, int64_t V, const char* op) {
  const Tensor c = ids.cpu();
  std::vector<int64_t> v(static_cast<size_t>(c.numel()));
  for (int64_t i = 0; i < c.numel(); ++i) {
    v[i] = c.dtype() == DType::i32 ? c.data<int32_t>()[i] : c.data<int64_t>()[i];
    GDN2_CHECK(v[i] >= 0 && v[i] < V, ValueError, op, ": token id ", v[i], " at ", i, " outside [0, ", V, ")");
  }
  return v;
}

}  // namespace

Tensor linear_forward(const Tensor& x, const Tensor& weight, const Tensor& bias, Tensor* into, const Tensor& residual) {
  GDN2_CHECK(x.defined() && weight.defined(), ValueError, "linear: x and weight are required");
  GDN2_CHECK(x.dim() >= 1 && weight.dim() == 2 && x.size(-1) == weight.size(1), ShapeError, "linear: x ",
             x.describe(), " does not match weight ", weight.describe(), " ([out, in])");
  const int64_t in = weight.size(1), out = weight.size(0), rows = x.numel() / std::max<int64_t>(in, 1);
  GDN2_CHECK(!bias.defined() || bias.shape() == Shape{out}, ShapeError, "linear: bias must be [", out, "], got ",
             bias.describe());
  GDN2_CHECK(into == nullptr || (into->defined() && into->shape() == with_last(x.shape(), out) &&
                                 into->dtype() == x.dtype() && into->device() == x.device()),
             ShapeError, "linear: `into` must be ", dtype_name(x.dtype()), shape_str(with_last(x.shape(), out)),
             " on x's device, got ", into ? into->describe() : "");
  GDN2_CHECK(!residual.defined() || (into == nullptr && residual.shape() == with_last(x.shape(), out) &&
                                     residual.dtype() == x.dtype() && residual.device() == x.device()),
             ShapeError, "linear: `residual` must be ", dtype_name(x.dtype()), shape_str(with_last(x.shape(), out)),
             " on x's device (and not given with `into`), got ", residual.describe());
  if (linear_on_cuda(x, {{&weight, "weight"}, {&bias, "bias"}}, {}, "linear", in, out)) {
#ifdef GDN2_WITH_CUDA
    return cuda::linear_forward(x, weight, bias, into, residual, rows, in, out);
#endif
  }
  check_compute(x, "linear", "x");
  check_same(x, weight, "linear", "x", "weight");
  if (bias.defined()) check_same(x, bias, "linear", "x", "bias");
  Tensor y = into != nullptr ? *into : residual.defined() ? residual.clone()
                                                            : Tensor::empty(with_last(x.shape(), out), x.dtype());
  by_dtype(x.dtype(), [&](auto r) {
    using R = decltype(r);
    cpu::linear_forward<R>(x.data<R>(), weight.data<R>(), bias.defined() ? bias.data<R>() : nullptr, y.data<R>(), rows,
                           in, out, into != nullptr || residual.defined());
    return 0;
  });
  return y;
}

Tensor linear_backward(const Tensor& dy, const Tensor& x, const Tensor& weight, Tensor* dweight, Tensor* dbias,
                       Tensor* dx_into, bool dweight_overwrite) {
  GDN2_CHECK(x.defined() && weight.defined() && dy.defined(), ValueError,
             "linear_backward: dy, x and weight are required");
  GDN2_CHECK(x.dim() >= 1 && weight.dim() == 2 && x.size(-1) == weight.size(1), ShapeError, "linear_backward: x ",
             x.describe(), " does not match weight ", weight.describe(), " ([out, in])");
  const int64_t in = weight.size(1), out = weight.size(0), rows = x.numel() / std::max<int64_t>(in, 1);
  GDN2_CHECK(dy.shape() == with_last(x.shape(), out), ShapeError, "linear_backward: dy ", dy.describe(),
             " does not match x ", x.describe(), " and weight ", weight.describe());
  GDN2_CHECK(dweight == nullptr || (dweight->defined() && dweight->shape() == weight.shape()), ShapeError,
             "linear_backward: gradient dweight must be ", shape_str(weight.shape()), ", got ",
             dweight ? dweight->describe() : "");
  GDN2_CHECK(dbias == nullptr || (dbias->defined() && dbias->shape() == Shape{out}), ShapeError,
             "linear_backward: dbias must be [", out, "], got ", dbias ? dbias->describe() : "");
  GDN2_CHECK(dx_into == nullptr || (dx_into->defined() && dx_into->shape() == x.shape() &&
                                    dx_into->dtype() == x.dtype() && dx_into->device() == x.device()),
             ShapeError, "linear_backward: dx_into must be like x ", x.describe(), ", got ",
             dx_into ? dx_into->describe() : "");
  if (linear_on_cuda(x, {{&dy, "dy"}, {&weight, "weight"}}, {{dweight, "dweight"}, {dbias, "dbias"}},
                     "linear_backward", in, out)) {
#ifdef GDN2_WITH_CUDA
    return cuda::linear_backward(dy, x, weight, dweight, dbias, dx_into, rows, in, out, dweight_overwrite);
#endif
  }
  check_compute(x, "linear_backward", "x");
  check_same(x, dy, "linear_backward", "x", "dy");
  check_same(x, weight, "linear_backward", "x", "weight");
  check_grad(dweight, weight, "linear_backward", "dweight");
  if (dbias) GDN2_CHECK(dbias->dtype() == x.dtype(), ShapeError, "linear_backward: dbias must be [", out, "] ",
                        dtype_name(x.dtype()));
  Tensor dx = dx_into != nullptr ? *dx_into : Tensor::empty(x.shape(), x.dtype());
  by_dtype(x.dtype(), [&](auto r) {
    using R = decltype(r);
    cpu::linear_backward<R>(dy.data<R>(), x.data<R>(), weight.data<R>(), dx.data<R>(),
                            dweight ? dweight->data<R>() : nullptr, dbias ? dbias->data<R>() : nullptr, rows, in, out,
                            dx_into != nullptr, !dweight_overwrite);
    return 0;
  });
  return dx;
}

Tensor embedding_forward(const Tensor& ids, const Tensor& table, bool check_gpu_ids) {
  const char* op = "embedding";
  GDN2_CHECK(ids.defined() && (ids.dtype() == DType::i32 || ids.dtype() == DType::i64), DTypeError, op,
             ": ids must be I32 or I64, got ", ids.describe());
  GDN2_CHECK(table.defined() && table.dim() == 2, ShapeError, op, ": table must be [V, D], got ", table.describe());
  const int64_t V = table.size(0), D = table.size(1), n = ids.numel();
  if (op_args::on_cuda(table, {}, {}, {}, op)) {  // ids on either device
#ifdef GDN2_WITH_CUDA
    if (ids.is_cpu()) host_ids(ids, V, op);  // GPU ids are checked by the kernel
    return cuda::embedding_gather(ids, table, check_gpu_ids);
#endif
  }
  GDN2_CHECK(ids.is_cpu(), ShapeError, op, ": ids ", ids.describe(), " are on the GPU but the table ", table.describe(),
             " is not");
  check_compute(table, op, "table");
  const std::vector<int64_t> id = host_ids(ids, V, op);
  Shape s = ids.shape();
  s.push_back(D);
  Tensor y = Tensor::empty(s, table.dtype());
  const size_t row = static_cast<size_t>(D) * dtype_size(table.dtype());
  const auto* src = static_cast<const std::byte*>(table.raw());
  auto* dst = static_cast<std::byte*>(y.raw_mut());
  for (int64_t i = 0; i < n; ++i) std::memcpy(dst + i * row, src + id[i] * row, row);
  return y;
}

void embedding_backward(const Tensor& dy, const Tensor& ids, Tensor& dtable) {
  const char* op = "embedding_backward";
  GDN2_CHECK(dy.defined() && dtable.defined(), ValueError, op, ": dy and dtable are required");
  GDN2_CHECK(ids.defined() && (ids.dtype() == DType::i32 || ids.dtype() == DType::i64), DTypeError, op,
             ": ids must be I32 or I64, got ", ids.describe());
  GDN2_CHECK(dtable.dim() == 2, ShapeError, op, ": dtable must be [V, D], got ", dtable.describe());
  const int64_t V = dtable.size(0), D = dtable.size(1), n = ids.numel();
  GDN2_CHECK(dy.numel() == n * D, ShapeError, op, ": dy ", dy.describe(), " vs ids ", ids.describe(), " and dtable ",
             dtable.describe());
  if (op_args::on_cuda(dy, {&dtable}, {}, {}, op)) {  // ids on either device
    GDN2_CHECK(dtable.dtype() == DType::f32, DTypeError, op, ": dtable must be F32 (a master gradient) on the GPU, got ",
               dtable.describe());
#ifdef GDN2_WITH_CUDA
    cuda::embedding_scatter_add(dy, host_ids(ids, V, op), dtable);
#endif
    return;
  }
  GDN2_CHECK(ids.is_cpu(), ShapeError, op, ": ids ", ids.describe(), " are on the GPU but dy ", dy.describe(),
             " is not");
  check_compute(dtable, op, "dtable");
  check_same(dtable, dy, op, "dtable", "dy");
  const std::vector<int64_t> id = host_ids(ids, V, op);
  by_dtype(dy.dtype(), [&](auto r) {
    using R = decltype(r);
    const R* g = dy.data<R>();
    R* t = dtable.data<R>();
    for (int64_t i = 0; i < n; ++i)
      for (int64_t d = 0; d < D; ++d) t[id[i] * D + d] += g[i * D + d];
    return 0;
  });
}

const Tensor kNoTensor;  // the absent second operand of a unary op
#ifdef GDN2_WITH_CUDA
#define GDN2_ON_CUDA(NAME, A, B)                                                                          \
  if (op_args::on_cuda(A, {}, {&B}, {}, #NAME)) {                                                         \
    GDN2_CHECK(!B.defined() || B.shape() == A.shape(), ShapeError, #NAME ": shapes ", A.describe(), " and ", \
               B.describe());                                                                             \
    return cuda::elementwise(cuda::Elementwise::NAME, A, B);                                              \
  }
#else
#define GDN2_ON_CUDA(NAME, A, B) op_args::on_cuda(A, {}, {&B}, {}, #NAME);
#endif
#define GDN2_UNARY(NAME, EXPR)                                     \
  Tensor NAME(const Tensor& x) {                                   \
    GDN2_CHECK(x.defined(), ValueError, #NAME ": x is required");  \
    GDN2_ON_CUDA(NAME, x, kNoTensor)                               \
    check_compute(x, #NAME, "x");                                  \
    Tensor y = Tensor::empty(x.shape(), x.dtype());                \
    by_dtype(x.dtype(), [&](auto r) {                              \
      using R = decltype(r);                                       \
      const R* a = x.data<R>();                                    \
      R* o = y.data<R>();                                          \
      cpu::for_each_index(x.numel(), [&](int64_t i) { o[i] = EXPR; }); \
      return 0;                                                    \
    });                                                            \
    return y;                                                      \
  }
#define GDN2_BINARY(NAME, EXPR)                                                                     \
  Tensor NAME(const Tensor& x, const Tensor& z) {                                                   \
    GDN2_CHECK(x.defined() && z.defined(), ValueError, #NAME ": both arguments are required");     \
    GDN2_ON_CUDA(NAME, x, z)                                                                        \
    check_compute(x, #NAME, "first argument");                                                      \
    check_same(x, z, #NAME, "first argument", "second argument");                                   \
    GDN2_CHECK(x.shape() == z.shape(), ShapeError, #NAME ": shapes ", x.describe(), " and ", z.describe()); \
    Tensor y = Tensor::empty(x.shape(), x.dtype());                                                 \
    by_dtype(x.dtype(), [&](auto r) {                                                               \
      using R = decltype(r);                                                                        \
      const R* a = x.data<R>();                                                                     \
      const R* b = z.data<R>();                                                                     \
      R* o = y.data<R>();                                                                           \
      cpu::for_each_index(x.numel(), [&](int64_t i) { o[i] = EXPR; });                              \
      return 0;                                                                                     \
    });                                                                                             \
    return y;                                                                                       \
  }

GDN2_UNARY(sigmoid_forward, cpu::sigmoid(a[i]))
GDN2_UNARY(silu_forward, cpu::silu(a[i]))
GDN2_BINARY(sigmoid_backward, a[i] * b[i] * (R(1) - b[i]))  // (dy, y)
GDN2_BINARY(silu_backward, a[i] * cpu::silu_grad(b[i]))     // (dy, x)
GDN2_BINARY(swiglu_forward, cpu::silu(a[i]) * b[i])         // (gate, up)
GDN2_BINARY(mul_forward, a[i] * b[i])

#undef GDN2_UNARY
#undef GDN2_BINARY
#undef GDN2_ON_CUDA

Tensor swiglu_forward(const Tensor& gate_up) {
  const char* op = "swiglu_forward";
  GDN2_CHECK(gate_up.defined() && gate_up.dim() >= 1 && gate_up.size(-1) % 2 == 0, ShapeError, op,
             ": gate_up must be [..., 2F], got ", gate_up.describe());
  if (op_args::on_cuda(gate_up, {}, {}, {}, op)) {
#ifdef GDN2_WITH_CUDA
    return cuda::swiglu_packed(gate_up);
#endif
  }
  check_compute(gate_up, op, "gate_up");
  const int64_t F = gate_up.size(-1) / 2, rows = gate_up.numel() / std::max<int64_t>(2 * F, 1);
  Tensor y = Tensor::empty(with_last(gate_up.shape(), F), gate_up.dtype());
  by_dtype(gate_up.dtype(), [&](auto r) {
    using R = decltype(r);
    const R* a = gate_up.data<R>();
    R* o = y.data<R>();
    cpu::for_each_index(rows * F, [&](int64_t i) {
      const int64_t row = i / F, j = i - row * F;
      o[i] = cpu::silu(a[2 * row * F + j]) * a[2 * row * F + F + j];
    });
    return 0;
  });
  return y;
}

void swiglu_backward(const Tensor& dh, const Tensor& gate, const Tensor& up, Tensor& dgate, Tensor& dup) {
  GDN2_CHECK(dh.defined(), ValueError, "swiglu_backward: dh is required");
  if (op_args::on_cuda(dh, {}, {&gate, &up}, {}, "swiglu_backward")) {
    GDN2_CHECK(dh.shape() == gate.shape() && gate.shape() == up.shape(), ShapeError, "swiglu_backward: dh ",
               dh.describe(), ", gate ", gate.describe(), ", up ", up.describe());
#ifdef GDN2_WITH_CUDA
    cuda::swiglu_grad(dh, gate, up, dgate, dup);
#endif
    return;
  }
  check_compute(dh, "swiglu_backward", "dh");
  GDN2_CHECK(dh.shape() == gate.shape() && gate.shape() == up.shape() && dh.dtype() == gate.dtype() &&
                 gate.dtype() == up.dtype(),
             ShapeError, "swiglu_backward: dh ", dh.describe(), ", gate ", gate.describe(), ", up ", up.describe());
  dgate = Tensor::empty(gate.shape(), gate.dtype());
  dup = Tensor::empty(up.shape(), up.dtype());
  by_dtype(dh.dtype(), [&](auto r) {
    using R = decltype(r);
    const R* d = dh.data<R>();
    const R* g = gate.data<R>();
    const R* u = up.data<R>();
    R* dg = dgate.data<R>();
    R* du = dup.data<R>();
    cpu::for_each_index(dh.numel(), [&](int64_t i) {
      dg[i] = d[i] * u[i] * cpu::silu_grad(g[i]);
      du[i] = d[i] * cpu::silu(g[i]);
    });
    return 0;
  });
}

std::vector<Tensor> split_last(const Tensor& x, const std::vector<int64_t>& sizes) {
  GDN2_CHECK(x.defined() && x.dim() >= 1, ShapeError, "split_last: x must have a last dimension, got ", x.describe());
  int64_t total = 0;
  for (int64_t s : sizes) {
    GDN2_CHECK(s >= 0, ValueError, "split_last: negative size ", s);
    total += s;
  }
  const int64_t D = x.size(-1), rows = D == 0 ? 0 : x.numel() / D;
  GDN2_CHECK(total == D, ShapeError, "split_last: sizes sum to ", total, " but x is ", x.describe());
  const size_t e = dtype_size(x.dtype());
  if (rows == 1) {  // one row: the parts are contiguous pieces of x, handed out as views where they stay 16-byte aligned
    bool aligned = reinterpret_cast<uintptr_t>(x.raw()) % 16 == 0;
    int64_t start = 0;
    for (int64_t s : sizes) {
      aligned = aligned && (static_cast<size_t>(start) * e) % 16 == 0;
      start += s;
    }
    if (aligned) {
      std::vector<Tensor> parts;
      const Tensor flat = x.reshape({D});
      int64_t off = 0;
      for (int64_t s : sizes) {
        Shape sh = x.shape();
        sh.back() = s;
        parts.push_back(flat.slice0(off, off + s).reshape(sh));
        off += s;
      }
      return parts;
    }
  }
#ifdef GDN2_WITH_CUDA
  if (!x.is_cpu()) return cuda::split_last(x, sizes);  // one kernel for every part
#endif
  std::vector<Tensor> parts;
  int64_t off = 0;
  for (int64_t s : sizes) {
    Shape sh = x.shape();
    sh.back() = s;
    Tensor p = Tensor::empty(sh, x.dtype(), x.device());
    copy_rows(p, 0, s * e, x, off * e, D * e, s * e, rows);
    parts.push_back(p);
    off += s;
  }
  return parts;
}

Tensor concat_last(const std::vector<Tensor>& parts) {
  GDN2_CHECK(!parts.empty() && parts[0].defined() && parts[0].dim() >= 1, ShapeError, "concat_last: no parts");
  const Tensor& first = parts[0];
  int64_t D = 0;
  for (const Tensor& p : parts) {
    GDN2_CHECK(p.defined() && p.dim() == first.dim() && p.device() == first.device(), ShapeError, "concat_last: ",
               p.describe(), " does not match ", first.describe());
    GDN2_CHECK(p.dtype() == first.dtype(), DTypeError, "concat_last: ", p.describe(), " does not share the dtype of ",
               first.describe());
    for (int64_t i = 0; i + 1 < p.dim(); ++i)
      GDN2_CHECK(p.size(i) == first.size(i), ShapeError, "concat_last: ", p.describe(), " vs ", first.describe());
    D += p.size(-1);
  }
#ifdef GDN2_WITH_CUDA
  if (!first.is_cpu()) return cuda::concat_last(parts);  // one kernel for every part
#endif
  Shape sh = first.shape();
  sh.back() = D;
  Tensor out = Tensor::empty(sh, first.dtype(), first.device());
  const int64_t rows = first.size(-1) == 0 ? (D == 0 ? 0 : out.numel() / D) : first.numel() / first.size(-1);
  const size_t e = dtype_size(first.dtype());
  int64_t off = 0;
  for (const Tensor& p : parts) {
    const int64_t s = p.size(-1);
    copy_rows(out, off * e, D * e, p, 0, s * e, s * e, rows);
    off += s;
  }
  return out;
}

void add_inplace(Tensor& x, const Tensor& y) {
  GDN2_CHECK(x.defined() && y.defined(), ValueError, "add_inplace: x and y are required");
  if (op_args::on_cuda(x, {&y}, {}, {}, "add_inplace")) {
    GDN2_CHECK(y.dtype() == x.dtype() || (x.dtype() == DType::f32 && dtype_is_float(y.dtype()) && y.dtype() != DType::f64),
               DTypeError, "add_inplace on CUDA: y ", y.describe(), " must have x's dtype or x must be F32, x is ",
               x.describe());
    GDN2_CHECK(x.numel() == y.numel(), ShapeError, "add_inplace: ", x.describe(), " += ", y.describe());
#ifdef GDN2_WITH_CUDA
    cuda::add_to(x, y);
#endif
    return;
  }
  check_compute(x, "add_inplace", "x");
  check_same(x, y, "add_inplace", "x", "y");
  GDN2_CHECK(x.numel() == y.numel(), ShapeError, "add_inplace: ", x.describe(), " += ", y.describe());
  by_dtype(x.dtype(), [&](auto r) {
    using R = decltype(r);
    R* a = x.data<R>();
    const R* b = y.data<R>();
    cpu::for_each_index(x.numel(), [&](int64_t i) { a[i] += b[i]; });
    return 0;
  });
}

Tensor argmax_rows(const Tensor& x) {
  const char* op = "argmax_rows";
  GDN2_CHECK(x.defined() && x.dim() == 2 && x.size(1) >= 1, ShapeError, op, ": x must be [rows, V] with V >= 1, got ",
             x.defined() ? x.describe() : std::string("nothing"));
  if (op_args::on_cuda(x, {}, {}, {}, op)) {
#ifdef GDN2_WITH_CUDA
    return cuda::argmax_rows(x);
#endif
  }
  op_args::check_float(x, op, "x");
  const int64_t rows = x.size(0), V = x.size(1);
  const Tensor c = op_args::to_dtype(x, DType::f64);
  std::vector<int32_t> out(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) {
    const double* row = c.data<double>() + r * V;
    int64_t best = 0;
    for (int64_t v = 0; v < V; ++v) {
      if (!std::isfinite(row[v])) {
        best = -1;
        break;
      }
      if (row[v] > row[best]) best = v;
    }
    out[static_cast<size_t>(r)] = static_cast<int32_t>(best);
  }
  return Tensor::from_vector<int32_t>({rows}, out);
}

void scale_inplace(Tensor& x, double s) {
  GDN2_CHECK(x.defined(), ValueError, "scale_inplace: x is required");
  if (op_args::on_cuda(x, {}, {}, {}, "scale_inplace")) {
#ifdef GDN2_WITH_CUDA
    cuda::scale_by(x, s);
#endif
    return;
  }
  check_compute(x, "scale_inplace", "x");
  by_dtype(x.dtype(), [&](auto r) {
    using R = decltype(r);
    R* a = x.data<R>();
    cpu::for_each_index(x.numel(), [&](int64_t i) { a[i] = static_cast<R>(a[i] * s); });
    return 0;
  });
}

LmLoss lm_head_cross_entropy(const Tensor& h, const Tensor& W, const Tensor& targets, bool want_grad, Tensor* dW,
                             double grad_scale) {
  const char* op = "lm_head_cross_entropy";
  GDN2_CHECK(h.defined() && W.defined() && targets.defined(), ValueError, op, ": h, W and targets are required");
  GDN2_CHECK(h.dim() == 2 && W.dim() == 2 && h.size(1) == W.size(1), ShapeError, "lm_head_cross_entropy: h ",
             h.describe(), " must be [N, D] and W ", W.describe(), " [V, D]");
  GDN2_CHECK(targets.dtype() == DType::i32, DTypeError, op, ": targets must be I32, got ", targets.describe());
  GDN2_CHECK(targets.numel() == h.size(0), ShapeError, op, ": targets must be [N] for h ", h.describe(), ", got ",
             targets.describe());
  const int64_t V = W.size(0);
  const bool on_gpu = op_args::on_cuda(h, {dW}, {&W}, {}, op);  // targets on either device
  GDN2_CHECK(on_gpu || targets.is_cpu(), ShapeError, op, ": targets ", targets.describe(), " are on the GPU but h ",
             h.describe(), " is not");
  const Tensor host_targets = targets.cpu();  // GPU targets: a copy, which waits for them
  const int32_t* t = host_targets.data<int32_t>();
  int64_t count = 0;
  for (int64_t i = 0; i < targets.numel(); ++i) {
    GDN2_CHECK(t[i] >= -1 && t[i] < V, ValueError, "lm_head_cross_entropy: target ", t[i], " at ", i,
               " outside [-1, ", V, ")");
    count += t[i] >= 0 ? 1 : 0;
  }
  if (on_gpu) {
    GDN2_CHECK(dW == nullptr || (dW->defined() && dW->shape() == W.shape()), ShapeError, op,
               ": dW must have W's shape ", W.describe(), ", got ", dW ? dW->describe() : "");
    GDN2_CHECK(dW == nullptr || dW->dtype() == DType::f32 || dW->dtype() == W.dtype(), DTypeError, op,
               ": dW must be F32 or W's dtype, got ", dW->describe());
    GDN2_CHECK(h.size(1) > 0 && V > 0, ShapeError, op, " on CUDA: D and V must be positive, got h ", h.describe(),
               " and W ", W.describe());
#ifdef GDN2_WITH_CUDA
    return cuda::lm_head_loss(h, W, targets.is_cpu() ? host_targets : targets, count, want_grad, dW, grad_scale);
#endif
  }
  check_compute(h, "lm_head_cross_entropy", "h");
  check_same(h, W, "lm_head_cross_entropy", "h", "W");
  check_grad(dW, W, "lm_head_cross_entropy", "dW");
  LmLoss r;
  Tensor dh;
  by_dtype(h.dtype(), [&](auto rr) {
    using R = decltype(rr);
    r = cpu::lm_head_cross_entropy<R>(h.data<R>(), W.data<R>(), t, h.size(0), h.size(1), V, want_grad,
                                      dW ? dW->data<R>() : nullptr, grad_scale, dh);
    return 0;
  });
  r.dh = dh;
  return r;
}

}  // namespace gdn2
