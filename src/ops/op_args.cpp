// Argument checks and dtype plumbing shared by the public ops.
#include "ops/op_args.h"

#include <cmath>

namespace gdn2::op_args {

void check_float(const Tensor& t, const char* op, const char* name) {
  if (!t.defined()) return;
  GDN2_CHECK(dtype_is_float(t.dtype()), DTypeError, op, ": ", name, " must be a float tensor, got ", t.describe());
}

void check_eps(double eps, const char* op) {
  GDN2_CHECK(std::isfinite(eps) && eps >= 0, ValueError, op, ": eps must be finite and >= 0, got ", eps);
}

DType compute_dtype(const Tensor& x) { return x.dtype() == DType::f64 ? DType::f64 : DType::f32; }

Tensor to_dtype(const Tensor& t, DType dt) {
  if (!t.defined() || t.dtype() == dt) return t;
  return t.to(dt);
}

Shape shape_drop_last(const Shape& s) { return Shape(s.begin(), s.end() - (s.empty() ? 0 : 1)); }

std::vector<int64_t> seq_offsets(const Tensor& cu_seqlens, int64_t batch, int64_t seq_len, const char* op) {
  std::vector<int64_t> offsets;
  if (!cu_seqlens.defined()) {
    for (int64_t b = 0; b <= batch; ++b) offsets.push_back(b * seq_len);
    return offsets;
  }
  const Tensor& cu = cu_seqlens;
  GDN2_CHECK(cu.dtype() == DType::i32 || cu.dtype() == DType::i64, DTypeError, op,
             ": cu_seqlens must be I32 or I64, got ", cu.describe());
  GDN2_CHECK(cu.dim() == 1 && cu.numel() >= 2, ShapeError, op, ": cu_seqlens must be [N + 1] with N >= 1, got ",
             cu.describe());
  GDN2_CHECK(batch == 1, ShapeError, op, ": packed sequences (cu_seqlens) need a batch of 1, got ", batch);
  for (int64_t i = 0; i < cu.numel(); ++i)
    offsets.push_back(cu.dtype() == DType::i32 ? cu.data<int32_t>()[i] : cu.data<int64_t>()[i]);
  GDN2_CHECK(offsets.front() == 0, ValueError, op, ": cu_seqlens must start at 0, starts at ", offsets.front());
  for (size_t i = 1; i < offsets.size(); ++i)
    GDN2_CHECK(offsets[i] >= offsets[i - 1], ValueError, op, ": cu_seqlens must be non-decreasing, got ",
               offsets[i - 1], " then ", offsets[i], " at index ", i);
  GDN2_CHECK(offsets.back() == seq_len, ValueError, op, ": cu_seqlens must end at the token count ", seq_len,
             ", ends at ", offsets.back());
  return offsets;
}

bool on_cuda(const Tensor& x, std::initializer_list<const Tensor*> others, std::initializer_list<const Tensor*> same,
             std::initializer_list<const Tensor*> params, const char* op) {
  GDN2_CHECK(x.defined(), ValueError, op, ": its main input is required");
  for (const auto& list : {others, same, params})
    for (const Tensor* t : list)
      GDN2_CHECK(t == nullptr || !t->defined() || t->device() == x.device(), ShapeError, op, ": ", t->describe(),
                 " is on another device than ", x.describe());
  if (x.is_cpu()) return false;
#ifdef GDN2_WITH_CUDA
  GDN2_CHECK(x.dtype() == DType::f32 || x.dtype() == DType::bf16 || x.dtype() == DType::f16, DTypeError, op,
             ": on the GPU the input must be F32, BF16 or F16, got ", x.describe());
  for (const Tensor* t : same)
    GDN2_CHECK(t == nullptr || !t->defined() || t->dtype() == x.dtype(), DTypeError, op, ": ", t->describe(),
               " must have the input's dtype ", dtype_name(x.dtype()));
  for (const Tensor* t : params)
    GDN2_CHECK(t == nullptr || !t->defined() || t->dtype() == DType::f32 || t->dtype() == x.dtype(), DTypeError, op,
               ": parameter ", t->describe(), " must be F32 or the input's dtype ", dtype_name(x.dtype()));
  return true;
#else
  GDN2_THROW(UnsupportedError, op, ": CUDA tensors need a build with the CUDA backend");
#endif
}

}  // namespace gdn2::op_args
