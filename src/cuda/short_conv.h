// CUDA backend of the short causal depthwise convolution (include/gdn2/ops/short_conv.h): forward, backward and the
// in-place decode step on GPU tensors; arguments validated by src/ops/short_conv.cpp.
#pragma once

#include <cstdint>
#include <vector>

#include "gdn2/ops/short_conv.h"

namespace gdn2::cuda {

// Taps the forward and backward kernels take at most (UnsupportedError above; the step takes any).
inline constexpr int64_t kShortConvMaxTaps = 16;

// A validated forward or backward call: every tensor on the GPU.
struct ShortConvCall {
  Tensor x;              // [rows, C]: F32, BF16 or F16
  Tensor weight;         // [C, W]: F32 or x's dtype
  Tensor bias;           // [C] (F32 or x's dtype) or undefined
  Tensor initial_cache;  // [N, C, W − 1] (F32 or x's dtype) or undefined (zeros)
  Tensor seq_offsets;    // I64 [N + 1]: sequence n is rows [o[n], o[n + 1]); undefined: sequence n is rows [n T, (n+1) T)
  int64_t N = 0, T = 0;  // sequences; rows per sequence without seq_offsets
  ConvActivation activation = ConvActivation::none;
};

// y [rows, C] in x's dtype; final_cache F32 [N, C, W − 1] when want_final_cache.
ShortConvResult short_conv_apply(const ShortConvCall& c, bool want_final_cache);

// dy [rows, C] in x's dtype; d_final_cache [N, C, W − 1] (F32 or x's dtype) or undefined. Returns dx [rows, C] in x's
// dtype, and F32 dweight [C, W], dbias [C] (when bias is defined) and d_initial_cache [N, C, W − 1] (when
// initial_cache is). The weight and bias gradients are per-part sums added in a fixed order (bitwise reproducible).
ShortConvGrads short_conv_grad(const ShortConvCall& c, const Tensor& dy, const Tensor& d_final_cache);

// x [N, C] (F32, BF16 or F16); cache [N, C, W − 1] (F32 or x's dtype), updated in place in its dtype; weight [C, W] and
// bias [C] (or undefined) F32 or x's dtype. Returns y in x's dtype as its parts along the channels, [N, sizes[i]] each
// (sizes sum to C, at most kShortConvStepMaxParts).
std::vector<Tensor> short_conv_decode(const Tensor& x, Tensor& cache, const Tensor& weight, const Tensor& bias,
                                      ConvActivation activation, const std::vector<int64_t>& sizes);

}  // namespace gdn2::cuda
