// Short causal depthwise convolution (fla ShortConvolution, SPEC §3 step 1): forward, backward and decode step.
//
//   y[t, c] = act(bias[c] + Σ_{i<W} weight[c, i] · x[t − W + 1 + i, c])
//
// Positions before a sequence's start read that sequence's cache (zeros without one), so the convolution restarts
// at every sequence of a packed batch.
//
// Shape contract (C channels, W >= 1 taps, N sequences):
//   x              [B, T, C]; or, with cu_seqlens, [1, Ttot, C] holding N packed sequences
//   weight         [C, W] or [C, 1, W] (torch Conv1d layout); W is the kernel size (4 in GDN-2 and Qwen3.5)
//   bias           [C] or undefined
//   cu_seqlens     undefined (then N = B), or [N + 1] I32/I64 with N >= 1, cu[0] = 0, non-decreasing, cu[N] = Ttot
//   initial_cache  [N, C, W − 1] or undefined (zeros): the W − 1 inputs before each sequence, oldest first
//   final_cache    [N, C, W − 1]: the last W − 1 inputs of each sequence counting its initial cache before it, so a
//                  sequence shorter than W − 1 passes part of its initial cache through ([.., W − 2] is the newest)
//   dy             like x;  d_final_cache [N, C, W − 1] or undefined (no gradient arrives at final_cache)
// Inputs may be any float dtype. Computation is in double when x is F64, else in float, and every output and
// gradient is F64 or F32 accordingly. Gradients have the shape of the argument they belong to.
//
// CUDA tensors (a build with the CUDA backend; the op runs where x lives): every tensor but cu_seqlens on x's device
// (ShapeError otherwise). x and dy in F32, BF16 or F16, one dtype; weight, bias, initial_cache and d_final_cache each
// F32 or x's dtype (DTypeError otherwise, F64 included). y and dx come in x's dtype; final_cache, dweight, dbias and
// d_initial_cache in F32 (final_cache is a decode cache the step takes as it is). cu_seqlens may be on either device:
// its values are checked on the host, so a GPU one is copied down, which waits for the work queued before it. All
// arithmetic is fp32; dweight and dbias are summed over the rows in a fixed order (bitwise reproducible for a given
// shape, on any GPU; no atomics). At most 16 taps (UnsupportedError above; the step takes any W). The decode step's
// cache is F32 or x's dtype and is updated in place in its own dtype. Kernels go on the legacy default stream.
#pragma once

#include <cstdint>
#include <vector>

#include "gdn2/tensor.h"

namespace gdn2 {

enum class ConvActivation : uint8_t { none, silu };  // applied after the bias, fused into the convolution

struct ShortConvResult {
  Tensor y;            // like x
  Tensor final_cache;  // [N, C, W − 1] when requested, else undefined
};

struct ShortConvGrads {
  Tensor dx;               // like x
  Tensor dweight;          // shape of weight as passed
  Tensor dbias;            // [C]; undefined when bias is
  Tensor d_initial_cache;  // [N, C, W − 1]; undefined when initial_cache is
};

ShortConvResult short_conv_forward(const Tensor& x, const Tensor& weight, const Tensor& bias,
                                   ConvActivation activation, const Tensor& cu_seqlens = {},
                                   const Tensor& initial_cache = {}, bool output_final_cache = false);

// Gradients of Σ y⊙dy + Σ final_cache⊙d_final_cache; the other arguments are the forward's.
ShortConvGrads short_conv_backward(const Tensor& dy, const Tensor& x, const Tensor& weight, const Tensor& bias,
                                   ConvActivation activation, const Tensor& cu_seqlens = {},
                                   const Tensor& initial_cache = {}, const Tensor& d_final_cache = {});

// Decode, one token per sequence: x [N, C]; cache [N, C, W − 1] F32 or F64 (on the GPU: F32 or x's dtype), updated in
// place (it drops its oldest input and appends x). Returns y [N, C]; token by token this equals short_conv_forward with the same cache.
Tensor short_conv_step(const Tensor& x, Tensor& cache, const Tensor& weight, const Tensor& bias,
                       ConvActivation activation);
// The same step with y split along the channels into parts of the given sizes (each >= 0, summing to C), part i
// [N, sizes[i]] contiguous: split_last(short_conv_step(...), sizes) without the copy (on CUDA the step writes each part
// in place, at most kShortConvStepMaxParts of them), for a layer that feeds the parts to different ops.
inline constexpr int kShortConvStepMaxParts = 8;
std::vector<Tensor> short_conv_step_split(const Tensor& x, Tensor& cache, const Tensor& weight, const Tensor& bias,
                                          ConvActivation activation, const std::vector<int64_t>& sizes);

}  // namespace gdn2
