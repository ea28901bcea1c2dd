// CUDA short causal depthwise convolution (W taps, optional bias and SiLU, caches of the W − 1 previous inputs):
// forward, backward (dx and the initial cache's gradient by a gather over the taps; weight and bias gradients as
// per-part sums added in a fixed order) and the in-place decode step.
#include <algorithm>

#include "cuda/common.cuh"
#include "cuda/elem.h"
#include "cuda/gdn2/load.cuh"
#include "cuda/model_ops.h"

namespace gdn2::cuda {

namespace {

constexpr int kMaxTaps = 16;

struct ConvArgs {
  const void* x;
  ElemType xt;
  const void* w;  // [C, W]
  ElemType wt;
  const void* bias;  // [C] or null
  ElemType bt;
  const void* cache;  // [B, C, W - 1] or null
  ElemType ct;
  int64_t B, T, C;
  int W;
  bool silu;
};

// Input at position tt (< T) of sequence b, channel c: x, or the initial cache before the start (zeros without one).
__device__ __forceinline__ float input_at(const ConvArgs& a, int64_t b, int64_t tt, int64_t c) {
  if (tt >= 0) return load_elem(a.x, a.xt, (b * a.T + tt) * a.C + c);
  if (a.cache == nullptr) return 0.f;
  return load_elem(a.cache, a.ct, (b * a.C + c) * (a.W - 1) + (a.W - 1 + tt));
}

__device__ __forceinline__ float pre_activation(const ConvArgs& a, int64_t b, int64_t t, int64_t c) {
  float z = a.bias != nullptr ? load_elem(a.bias, a.bt, c) : 0.f;
  for (int i = 0; i < a.W; ++i) z += load_elem(a.w, a.wt, c * a.W + i) * input_at(a, b, t - a.W + 1 + i, c);
  return z;
}

__device__ __forceinline__ float sigmoidf(float z) { return 1.f / (1.f + __expf(-z)); }

__global__ void conv_forward_kernel(ConvArgs a, void* y, float* final_cache) {
  const int64_t n = a.B * a.T * a.C;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t c = i % a.C, t = (i / a.C) % a.T, b = i / (a.C * a.T);
    const float z = pre_activation(a, b, t, c);
    store_elem(y, a.xt, i, a.silu ? z * sigmoidf(z) : z);
  }
  if (final_cache == nullptr) return;
  const int64_t m = a.B * a.C * (a.W - 1);
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < m;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t j = i % (a.W - 1), c = (i / (a.W - 1)) % a.C, b = i / ((a.W - 1) * a.C);
    final_cache[i] = input_at(a, b, a.T - (a.W - 1) + j, c);
  }
}

// dz = dy · act'(z) at every position, F32.
__global__ void conv_dz_kernel(ConvArgs a, const void* dy, float* dz) {
  const int64_t n = a.B * a.T * a.C;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const float g = load_elem(dy, a.xt, i);
    if (!a.silu) {
      dz[i] = g;
      continue;
    }
    const int64_t c = i % a.C, t = (i / a.C) % a.T, b = i / (a.C * a.T);
    const float z = pre_activation(a, b, t, c), s = sigmoidf(z);
    dz[i] = g * s * (1.f + z * (1.f - s));
  }
}

// dx at position t (and, for t < 0, the initial cache's gradient) gathers the outputs that read it:
// dx[t, c] = Σ_i w[c, i] dz[t + W − 1 − i, c] over those positions inside the sequence.
__global__ void conv_dx_kernel(ConvArgs a, const float* dz, void* dx, float* dcache) {
  const int64_t P = a.T + (dcache != nullptr ? a.W - 1 : 0);  // positions − (W − 1) .. T − 1 when the cache has a grad
  const int64_t n = a.B * P * a.C, shift = dcache != nullptr ? a.W - 1 : 0;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t c = i % a.C, pp = (i / a.C) % P, b = i / (a.C * P), t = pp - shift;
    float s = 0.f;
    for (int k = 0; k < a.W; ++k) {
      const int64_t out = t + a.W - 1 - k;
      if (out >= 0 && out < a.T) s += load_elem(a.w, a.wt, c * a.W + k) * dz[(b * a.T + out) * a.C + c];
    }
    if (t >= 0)
      store_elem(dx, a.xt, (b * a.T + t) * a.C + c, s);
    else
      dcache[(b * a.C + c) * (a.W - 1) + (a.W - 1 + t)] = s;
  }
}

// part[p, c, i] = Σ over the rows (b, t) of part p of dz[b, t, c] · input(b, t − W + 1 + i, c), and the bias's
// part[p, c, W] = Σ dz.
__global__ void conv_dweight_kernel(ConvArgs a, const float* dz, int64_t rows_per_part, float* part) {
  const int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= a.C) return;
  const int64_t rows = a.B * a.T, r0 = static_cast<int64_t>(blockIdx.y) * rows_per_part;
  const int64_t r1 = r0 + rows_per_part < rows ? r0 + rows_per_part : rows;
  float acc[kMaxTaps + 1] = {};
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t b = r / a.T, t = r % a.T;
    const float g = dz[r * a.C + c];
    for (int i = 0; i < a.W; ++i) acc[i] += g * input_at(a, b, t - a.W + 1 + i, c);
    acc[kMaxTaps] += g;
  }
  float* out = part + (static_cast<int64_t>(blockIdx.y) * a.C + c) * (a.W + 1);
  for (int i = 0; i < a.W; ++i) out[i] = acc[i];
  out[a.W] = acc[kMaxTaps];
}

__global__ void conv_step_kernel(ConvArgs a, float* cache, void* y) {
  const int64_t n = a.B * a.C;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t c = i % a.C;
    float* h = cache + i * (a.W - 1);
    const float x = load_elem(a.x, a.xt, i);
    float z = a.bias != nullptr ? load_elem(a.bias, a.bt, c) : 0.f;
    for (int k = 0; k < a.W - 1; ++k) z += load_elem(a.w, a.wt, c * a.W + k) * h[k];
    z += load_elem(a.w, a.wt, c * a.W + a.W - 1) * x;
    for (int k = 0; k + 1 < a.W - 1; ++k) h[k] = h[k + 1];
    if (a.W > 1) h[a.W - 2] = x;
    store_elem(y, a.xt, i, a.silu ? z * sigmoidf(z) : z);
  }
}

ConvArgs conv_args(const Tensor& x, const Tensor& weight, const Tensor& bias, ConvActivation act, const Tensor& cache,
                   int64_t B, int64_t T, int64_t C) {
  const char* op = "short_conv";
  ConvArgs a{};
  a.x = x.raw();
  a.xt = elem_type(x, op, "x");
  a.w = weight.raw();
  a.wt = elem_type(weight, op, "weight");
  a.bias = bias.defined() ? bias.raw() : nullptr;
  a.bt = bias.defined() ? elem_type(bias, op, "bias") : ElemType::f32;
  a.cache = cache.defined() ? cache.raw() : nullptr;
  a.ct = cache.defined() ? elem_type(cache, op, "cache") : ElemType::f32;
  a.B = B;
  a.T = T;
  a.C = C;
  a.W = static_cast<int>(weight.size(-1));
  a.silu = act == ConvActivation::silu;
  GDN2_CHECK(a.W >= 1 && a.W <= kMaxTaps, UnsupportedError, "short_conv on CUDA: at most ", kMaxTaps, " taps, got ",
             a.W);
  return a;
}

unsigned grid_for(int64_t n) { return static_cast<unsigned>(std::clamp<int64_t>((n + 255) / 256, 1, 132 * 16)); }

}  // namespace

ShortConvResult short_conv_forward(const Tensor& x, const Tensor& weight, const Tensor& bias, ConvActivation act,
                                   const Tensor& initial_cache, bool output_final_cache) {
  const int64_t B = x.size(0), T = x.size(1), C = x.size(2);
  const ConvArgs a = conv_args(x, weight, bias, act, initial_cache, B, T, C);
  ShortConvResult r;
  r.y = Tensor::empty(x.shape(), x.dtype(), Device::cuda);
  if (output_final_cache) r.final_cache = Tensor::empty({B, C, a.W - 1}, DType::f32, Device::cuda);
  if (B * C == 0) return r;
  conv_forward_kernel<<<grid_for(std::max(B * T * C, B * C * (a.W - 1))), 256>>>(
      a, r.y.raw_mut(), output_final_cache ? static_cast<float*>(r.final_cache.raw_mut()) : nullptr);
  GDN2_CUDA_CHECK(cudaGetLastError());
  return r;
}

ShortConvGrads short_conv_backward(const Tensor& dy, const Tensor& x, const Tensor& weight, const Tensor& bias,
                                   ConvActivation act, const Tensor& initial_cache, const Tensor& d_final_cache) {
  const int64_t B = x.size(0), T = x.size(1), C = x.size(2);
  const ConvArgs a = conv_args(x, weight, bias, act, initial_cache, B, T, C);
  GDN2_CHECK(!d_final_cache.defined(), UnsupportedError,
             "short_conv_backward on CUDA: a gradient arriving at the final cache is not supported");
  ShortConvGrads g;
  g.dx = Tensor::empty(x.shape(), x.dtype(), Device::cuda);
  if (initial_cache.defined()) g.d_initial_cache = Tensor::zeros({B, C, a.W - 1}, DType::f32, Device::cuda);
  const int64_t rows = B * T;
  Tensor sums;
  if (rows > 0 && C > 0) {
    Tensor dz = Tensor::empty({rows, C}, DType::f32, Device::cuda);
    conv_dz_kernel<<<grid_for(rows * C), 256>>>(a, dy.raw(), static_cast<float*>(dz.raw_mut()));
    conv_dx_kernel<<<grid_for(B * (T + a.W - 1) * C), 256>>>(
        a, static_cast<const float*>(dz.raw()), g.dx.raw_mut(),
        initial_cache.defined() ? static_cast<float*>(g.d_initial_cache.raw_mut()) : nullptr);
    const int64_t parts = std::clamp<int64_t>(rows / 64, 1, 128), per = (rows + parts - 1) / parts;
    Tensor part = Tensor::empty({parts, C * (a.W + 1)}, DType::f32, Device::cuda);
    conv_dweight_kernel<<<dim3(static_cast<unsigned>((C + 127) / 128), static_cast<unsigned>(parts)), 128>>>(
        a, static_cast<const float*>(dz.raw()), per, static_cast<float*>(part.raw_mut()));
    GDN2_CUDA_CHECK(cudaGetLastError());
    sums = column_sum(part, parts, C * (a.W + 1)).reshape({C, a.W + 1});
  } else {
    sums = Tensor::zeros({C, a.W + 1}, DType::f32, Device::cuda);
  }
  // Split [C, W + 1] into the weight's [C, W] (in the weight's shape) and the bias's [C].
  const std::vector<Tensor> parts = split_last(sums, {a.W, 1});
  g.dweight = parts[0].reshape(weight.shape());
  if (bias.defined()) g.dbias = parts[1].reshape({C});
  return g;
}

Tensor short_conv_step(const Tensor& x, Tensor& cache, const Tensor& weight, const Tensor& bias, ConvActivation act) {
  const int64_t N = x.size(0), C = x.size(1);
  const ConvArgs a = conv_args(x, weight, bias, act, Tensor(), N, 1, C);
  Tensor y = Tensor::empty(x.shape(), x.dtype(), Device::cuda);
  if (N * C == 0) return y;
  conv_step_kernel<<<grid_for(N * C), 256>>>(a, static_cast<float*>(cache.raw_mut()), y.raw_mut());
  GDN2_CUDA_CHECK(cudaGetLastError());
  return y;
}

}  // namespace gdn2::cuda
