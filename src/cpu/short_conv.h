// CPU backend of the short causal depthwise convolution (include/gdn2/ops/short_conv.h); arguments arrive validated.
#pragma once

#include <cstdint>
#include <vector>

#include "gdn2/ops/short_conv.h"

namespace gdn2::cpu {

// A validated call; every tensor is in the compute dtype (F32 or F64, that of x).
struct ShortConvArgs {
  Tensor x;                          // [rows, C]
  Tensor weight;                     // [C, W]
  Tensor bias;                       // [C] or undefined
  Tensor initial_cache;              // [N, C, W − 1] or undefined (zeros)
  std::vector<int64_t> seq_offsets;  // N + 1 row offsets: sequence n is rows [seq_offsets[n], seq_offsets[n + 1])
  ConvActivation activation = ConvActivation::none;
};

// y [rows, C]; final_cache [N, C, W − 1] when want_final_cache.
ShortConvResult short_conv_forward(const ShortConvArgs& a, bool want_final_cache);
// dy [rows, C], d_final_cache [N, C, W − 1] or undefined. Returns dx [rows, C], dweight [C, W], dbias [C] when bias
// is defined, d_initial_cache [N, C, W − 1] when initial_cache is defined.
ShortConvGrads short_conv_backward(const ShortConvArgs& a, const Tensor& dy, const Tensor& d_final_cache);
// x [N, C], weight [C, W], bias [C] or undefined, cache [N, C, W − 1], all in one compute dtype; cache updated in
// place. Returns y [N, C].
Tensor short_conv_step(const Tensor& x, Tensor& cache, const Tensor& weight, const Tensor& bias,
                       ConvActivation activation);

}  // namespace gdn2::cpu
