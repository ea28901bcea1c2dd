// Rotary position embedding in the HF convention (rotate_half, non-interleaved halves, optional partial RoPE),
// forward and backward.
//
// With rd = rotary_dim, for each head of each token at position p and i < rd / 2:
//   inv_freq[i] = theta^(−2i / rd),  a = p · inv_freq[i],  x1 = x[i],  x2 = x[i + rd/2]
//   y[i] = x1 · cos a − x2 · sin a,  y[i + rd/2] = x2 · cos a + x1 · sin a,  y[d] = x[d] for d >= rd
// Qwen3.5 uses rd = head_dim / 4 (partial_rotary_factor 0.25). cos and sin are computed in double, then applied
// in the compute dtype. The backward is the inverse rotation (angle −a) applied to dy.
//
// Shape contract:
//   x, dy      [B, T, H, D], any float dtype; the result is like x (F64 when x is F64, else F32)
//   positions  either a start offset s (token t has position s + t in every batch row) or an I32/I64 tensor
//              [B, T] of explicit positions (any integers, e.g. past a KV cache or restarting per packed sequence)
//   options    theta finite and > 0; rotary_dim 0 (= D) or even with 2 <= rotary_dim <= D
//
// CUDA tensors (a build with the CUDA backend; the op runs where x or dy lives): x / dy in F32, BF16 or F16 (F64:
// DTypeError) and the result in the same dtype; a positions tensor must be on the GPU too (ShapeError otherwise) and
// is read there. cos and sin in double as on the CPU, the rotation in fp32. Launched on the legacy default stream; the
// call does not wait for it.
#pragma once

#include <cstdint>

#include "gdn2/tensor.h"

namespace gdn2 {

struct RopeOptions {
  double theta = 10000.0;  // rope_theta (Qwen3.5: 10^7)
  int64_t rotary_dim = 0;  // features rotated at the front of each head; 0 means all D
};

Tensor rope_forward(const Tensor& x, int64_t start, const RopeOptions& options = {});
Tensor rope_forward(const Tensor& x, const Tensor& positions, const RopeOptions& options = {});
// dx for dy; start/positions and options must be the forward's.
Tensor rope_backward(const Tensor& dy, int64_t start, const RopeOptions& options = {});
Tensor rope_backward(const Tensor& dy, const Tensor& positions, const RopeOptions& options = {});

}  // namespace gdn2
