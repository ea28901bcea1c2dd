// CUDA RoPE (HF rotate_half, partial rotary_dim): one thread per (token, head, rotated pair i), which forms cos and
// sin of its angle (in double, as the CPU does), rotates pair i and copies the head's features past rotary_dim at
// i, i + rd/2, ...; consecutive threads take consecutive i, so every access is coalesced, and a single decode token
// still spreads over heads x pairs threads.
#include "cuda/rope.h"

#include <cstdint>

#include "cuda/common.cuh"
#include "cuda/stream.h"
#include "cuda/elem.h"
#include "cuda/gdn2/load.cuh"

namespace gdn2::cuda {

namespace {

constexpr int kThreads = 256;

struct RopeArgs {
  const void* x;
  void* y;
  ElemType t;
  const int32_t* pos32;  // explicit positions [B, T], or null
  const int64_t* pos64;  // explicit positions [B, T], or null
  int64_t start, T, tokens;
  int H, D, rd;
  double theta, sign;
};

__global__ void rope_kernel(RopeArgs a) {
  const int half = a.rd / 2;
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (idx >= a.tokens * a.H * half) return;
  const int64_t row = idx / half;  // token * H + head
  const int64_t tok = row / a.H;
  const int i = static_cast<int>(idx % half);
  const int64_t p = a.pos32 != nullptr ? a.pos32[tok] : a.pos64 != nullptr ? a.pos64[tok] : a.start + tok % a.T;
  // The CPU's inv_freq and angle, bit for bit where the libraries agree.
  const double angle = static_cast<double>(p) * pow(a.theta, -static_cast<double>(2 * i) / static_cast<double>(a.rd));
  double s, c;
  sincos(angle, &s, &c);
  const float cf = static_cast<float>(c), sf = static_cast<float>(a.sign * s);
  const int64_t base = row * a.D;
  const float x1 = load_elem(a.x, a.t, base + i), x2 = load_elem(a.x, a.t, base + i + half);
  store_elem(a.y, a.t, base + i, x1 * cf - x2 * sf);
  store_elem(a.y, a.t, base + i + half, x2 * cf + x1 * sf);
  for (int d = a.rd + i; d < a.D; d += half) store_elem(a.y, a.t, base + d, load_elem(a.x, a.t, base + d));
}

}  // namespace

Tensor rope_rotate(const Tensor& x, int64_t start, const Tensor& positions, double theta, int64_t rotary_dim,
                   bool inverse) {
  const char* op = inverse ? "rope_backward" : "rope_forward";
  const int64_t B = x.size(0), T = x.size(1), H = x.size(2), D = x.size(3);
  GDN2_CHECK(H < (int64_t{1} << 31) && D < (int64_t{1} << 31), UnsupportedError, op, " on CUDA: ", x.describe());
  RopeArgs a{};
  a.x = x.raw();
  a.t = elem_type(x, op, "x");
  if (positions.defined()) {
    if (positions.dtype() == DType::i32)
      a.pos32 = static_cast<const int32_t*>(positions.raw());
    else
      a.pos64 = static_cast<const int64_t*>(positions.raw());
  }
  a.start = start;
  a.T = T;
  a.tokens = B * T;
  a.H = static_cast<int>(H);
  a.D = static_cast<int>(D);
  a.rd = static_cast<int>(rotary_dim);
  a.theta = theta;
  a.sign = inverse ? -1.0 : 1.0;
  Tensor y = Tensor::empty(x.shape(), x.dtype(), Device::cuda);
  const int64_t threads = a.tokens * H * (a.rd / 2);
  if (threads == 0 || H == 0) return y;
  const int64_t blocks = (threads + kThreads - 1) / kThreads;
  GDN2_CHECK(blocks < (int64_t{1} << 31), UnsupportedError, op, " on CUDA: ", x.describe(), " is too large");
  a.y = y.raw_mut();
  rope_kernel<<<static_cast<unsigned>(blocks), kThreads, 0, stream()>>>(a);
  GDN2_CUDA_CHECK(cudaGetLastError());
  return y;
}

}  // namespace gdn2::cuda
