// Public RoPE ops: check the shape contract of include/gdn2/ops/rope.h, then dispatch: the CPU rotation takes the
// positions as host values; the CUDA backend (src/cuda/rope.h) reads a start offset or the GPU positions tensor.
#include "gdn2/ops/rope.h"

#include <cmath>
#include <cstdint>
#include <vector>

#include "cpu/rope.h"
#include "ops/op_args.h"
#ifdef GDN2_WITH_CUDA
#include "cuda/rope.h"
#endif

namespace gdn2 {

namespace {

// x [B, T, H, D] float; options valid for D. Returns the rotary dim (0 resolved to D).
int64_t check_rope_args(const Tensor& x, const RopeOptions& opt, const char* op, const char* name) {
  GDN2_CHECK(x.defined(), ValueError, op, ": ", name, " is required");
  op_args::check_float(x, op, name);
  GDN2_CHECK(x.dim() == 4, ShapeError, op, ": ", name, " must be [B, T, H, D], got ", x.describe());
  const int64_t D = x.size(3);
  GDN2_CHECK(std::isfinite(opt.theta) && opt.theta > 0, ValueError, op, ": theta must be finite and > 0, got ",
             opt.theta);
  const int64_t rd = opt.rotary_dim == 0 ? D : opt.rotary_dim;
  GDN2_CHECK(rd >= 2 && rd <= D && rd % 2 == 0, ValueError, op, ": rotary_dim must be even with 2 <= rotary_dim <= D",
             " (0 means D), got rotary_dim ", opt.rotary_dim, " for ", name, " ", x.describe());
  return rd;
}

std::vector<int64_t> start_positions(const Tensor& x, int64_t start) {
  const int64_t B = x.size(0), T = x.size(1);
  std::vector<int64_t> pos(static_cast<size_t>(B * T));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t) pos[static_cast<size_t>(b * T + t)] = start + t;
  return pos;
}

// positions I32/I64 [B, T] for x [B, T, H, D].
void check_positions(const Tensor& x, const Tensor& positions, const char* op) {
  GDN2_CHECK(positions.defined(), ValueError, op, ": positions is required (or pass a start offset)");
  GDN2_CHECK(positions.dtype() == DType::i32 || positions.dtype() == DType::i64, DTypeError, op,
             ": positions must be I32 or I64, got ", positions.describe());
  const Shape want{x.size(0), x.size(1)};
  GDN2_CHECK(positions.shape() == want, ShapeError, op, ": positions must be [B, T] = ", shape_str(want), " for ",
             x.describe(), ", got ", positions.describe());
}

std::vector<int64_t> tensor_positions(const Tensor& positions) {
  std::vector<int64_t> pos(static_cast<size_t>(positions.numel()));
  for (int64_t i = 0; i < positions.numel(); ++i)
    pos[static_cast<size_t>(i)] =
        positions.dtype() == DType::i32 ? positions.data<int32_t>()[i] : positions.data<int64_t>()[i];
  return pos;
}

// x rotated by +angle (forward) or −angle (inverse): positions start + t, or `positions` when defined (validated).
// On the GPU, positions must be there too.
Tensor rotate(const Tensor& x, int64_t start, const Tensor& positions, const RopeOptions& opt, int64_t rd,
              bool inverse) {
  if (op_args::on_cuda(x, {&positions}, {}, {}, inverse ? "rope_backward" : "rope_forward")) {
#ifdef GDN2_WITH_CUDA
    return cuda::rope_rotate(x, start, positions, opt.theta, rd, inverse);
#endif
  }
  const std::vector<int64_t> pos = positions.defined() ? tensor_positions(positions) : start_positions(x, start);
  return cpu::rope_rotate(op_args::to_dtype(x, op_args::compute_dtype(x)), pos, opt.theta, rd, inverse);
}

}  // namespace

Tensor rope_forward(const Tensor& x, int64_t start, const RopeOptions& options) {
  const int64_t rd = check_rope_args(x, options, "rope_forward", "x");
  return rotate(x, start, Tensor(), options, rd, false);
}

Tensor rope_forward(const Tensor& x, const Tensor& positions, const RopeOptions& options) {
  const char* op = "rope_forward";
  const int64_t rd = check_rope_args(x, options, op, "x");
  check_positions(x, positions, op);
  return rotate(x, 0, positions, options, rd, false);
}

Tensor rope_backward(const Tensor& dy, int64_t start, const RopeOptions& options) {
  const int64_t rd = check_rope_args(dy, options, "rope_backward", "dy");
  return rotate(dy, start, Tensor(), options, rd, true);
}

Tensor rope_backward(const Tensor& dy, const Tensor& positions, const RopeOptions& options) {
  const char* op = "rope_backward";
  const int64_t rd = check_rope_args(dy, options, op, "dy");
  check_positions(dy, positions, op);
  return rotate(dy, 0, positions, options, rd, true);
}

}  // namespace gdn2
