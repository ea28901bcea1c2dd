// Row norms over the last dimension: L2 norm (fla l2norm, for q and k) and gated RMSNorm (fla FusedRMSNormGated,
// Qwen3.5 norms), forward and backward.
//
// CUDA tensors (a build with the CUDA backend; the op runs where its main input x, or y for l2_norm_backward, lives):
// every tensor on that device (ShapeError otherwise). x (y), gate and dy in F32, BF16 or F16, all one dtype; weight
// F32 or x's dtype (DTypeError otherwise, F64 included). y, dx and dgate come in x's dtype, rstd in F32 (the backward
// takes the forward's F32 rstd), dweight in F32. All arithmetic is fp32; dweight is summed over the rows in a fixed
// order (bitwise reproducible for a given shape, on any GPU; no atomics). D is at most 16384 (UnsupportedError above).
// The kernels go on the legacy default stream; the call does not wait for them.
#pragma once

#include <cstdint>

#include "gdn2/tensor.h"

namespace gdn2 {

// ---- L2 norm:  y = x · rsqrt(Σ_d x_d² + eps)
// Shape contract: x [..., D] (D >= 1) any float dtype; y like x; rstd = rsqrt(Σ x² + eps) with shape [...] (x
// without its last dim); dy like y. Computes in double when x (for the backward: y) is F64, else in float;
// outputs F64 or F32 accordingly. eps must be finite and >= 0.
struct L2NormResult {
  Tensor y, rstd;
};
L2NormResult l2_norm_forward(const Tensor& x, double eps = 1e-6);
Tensor l2_norm_backward(const Tensor& dy, const Tensor& y, const Tensor& rstd);  // returns dx like y

// ---- Gated RMSNorm:  y = x · rsqrt(mean_d x_d² + eps) · w · act(gate)
// with w = weight (or 1 + weight when zero_centred, Qwen3.5's other norms; 1 when weight is undefined) and
// act(gate) = sigmoid(gate) (GDN-2 output norm, fla activation="sigmoid") or silu(gate) (Qwen3.5 linear-attention
// norm); an undefined gate gives plain RMSNorm.
// Shape contract: x [..., D] (D >= 1) any float dtype; weight [D] or undefined; gate like x or undefined;
// y like x; rstd = rsqrt(mean x² + eps) with shape [...]; dy like x. Computes in double when x is F64, else in
// float; outputs and gradients F64 or F32 accordingly. eps must be finite and >= 0.
enum class NormGateActivation : uint8_t { sigmoid, silu };

struct RmsNormOptions {
  double eps = 1e-5;
  NormGateActivation gate_activation = NormGateActivation::sigmoid;
  bool zero_centred = false;  // apply the weight as (1 + weight)
};

struct RmsNormResult {
  Tensor y, rstd;
};

struct RmsNormGrads {
  Tensor dx;       // like x
  Tensor dweight;  // [D], summed over rows in a fixed order (bitwise reproducible); undefined when weight is
  Tensor dgate;    // like gate; undefined when gate is
};

RmsNormResult rms_norm_forward(const Tensor& x, const Tensor& weight, const Tensor& gate,
                               const RmsNormOptions& options = {});
// rstd is the forward's; options must be the forward's (eps is not used: rstd carries it). dres (x's shape and dtype:
// the gradient of a residual path around the norm), when given, is added to dx in the same pass.
RmsNormGrads rms_norm_backward(const Tensor& dy, const Tensor& x, const Tensor& rstd, const Tensor& weight,
                               const Tensor& gate, const RmsNormOptions& options = {}, const Tensor& dres = {});

}  // namespace gdn2
