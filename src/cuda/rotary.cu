// CUDA RoPE (HF rotate_half, partial rotary_dim): one thread per rotated pair, angles in double as on the CPU.
#include <vector>

#include "cuda/common.cuh"
#include "cuda/elem.h"
#include "cuda/gdn2/load.cuh"
#include "cuda/model_ops.h"

namespace gdn2::cuda {

namespace {

// Element pair i of head (b, t, h) rotated by sign · pos · theta^(−2i / rd); features >= rd copied.
__global__ void rope_kernel(const void* x, ElemType t, void* y, int64_t T, int64_t H, int64_t D, int64_t rd,
                            int64_t start, const int32_t* pos, double log_theta, int sign, int64_t heads) {
  const int64_t head = static_cast<int64_t>(blockIdx.x) * blockDim.y + threadIdx.y;  // (b, t, h) flattened
  if (head >= heads) return;
  const int64_t bt = head / H, base = head * D, half = rd / 2;
  const double p = pos != nullptr ? static_cast<double>(pos[bt]) : static_cast<double>(start + bt % T);
  for (int64_t i = threadIdx.x; i < half; i += blockDim.x) {
    const double a = sign * p * exp(-2.0 * static_cast<double>(i) / static_cast<double>(rd) * log_theta);
    double s, c;
    sincos(a, &s, &c);
    const float x1 = load_elem(x, t, base + i), x2 = load_elem(x, t, base + i + half);
    store_elem(y, t, base + i, x1 * static_cast<float>(c) - x2 * static_cast<float>(s));
    store_elem(y, t, base + i + half, x2 * static_cast<float>(c) + x1 * static_cast<float>(s));
  }
  for (int64_t d = rd + threadIdx.x; d < D; d += blockDim.x) store_elem(y, t, base + d, load_elem(x, t, base + d));
}

}  // namespace

Tensor rope(const Tensor& x, int64_t start, const Tensor& pos, double theta, int64_t rotary_dim, int sign) {
  const int64_t B = x.size(0), T = x.size(1), H = x.size(2), D = x.size(3);
  const int64_t rd = rotary_dim == 0 ? D : rotary_dim, heads = B * T * H;
  Tensor y = Tensor::empty(x.shape(), x.dtype(), Device::cuda);
  if (heads == 0) return y;
  Tensor p;
  if (pos.defined()) {
    const Tensor c = pos.cpu();
    std::vector<int32_t> v(static_cast<size_t>(c.numel()));
    for (int64_t i = 0; i < c.numel(); ++i)
      v[static_cast<size_t>(i)] = c.dtype() == DType::i32 ? c.data<int32_t>()[i]
                                                         : static_cast<int32_t>(c.data<int64_t>()[i]);
    p = Tensor::from_vector<int32_t>({c.numel()}, v).to(Device::cuda);
  }
  const dim3 block(32, 8);
  rope_kernel<<<static_cast<unsigned>((heads + 7) / 8), block>>>(
      x.raw(), elem_type(x, "rope", "x"), y.raw_mut(), T, H, D, rd, start,
      p.defined() ? static_cast<const int32_t*>(p.raw()) : nullptr, std::log(theta), sign, heads);
  GDN2_CUDA_CHECK(cudaGetLastError());
  return y;
}

}  // namespace gdn2::cuda
