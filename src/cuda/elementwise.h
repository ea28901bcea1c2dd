// CUDA backend of the dense layer's elementwise ops and last-dimension split/concat (include/gdn2/ops/dense.h);
// arguments validated by src/ops/dense.cpp. Activations F32, BF16 or F16, results in the input's dtype, fp32 arithmetic.
#pragma once

#include <cstdint>
#include <vector>

#include "gdn2/tensor.h"

namespace gdn2::cuda {

// The elementwise ops of dense.h with one result, named as there; binary ops take (a, b) in that op's order:
// sigmoid_backward (dy, y), silu_backward (dy, x), swiglu_forward (gate, up), mul_forward (a, b).
enum class Elementwise { sigmoid_forward, silu_forward, sigmoid_backward, silu_backward, swiglu_forward, mul_forward };

// y = op(a) or op(a, b), a fresh tensor shaped and typed like a; b (binary ops) has a's dtype and element count.
Tensor elementwise(Elementwise op, const Tensor& a, const Tensor& b);
// y [..., F] = silu(gate) ⊙ up of the packed gate_up [..., 2F] (gate first); y in its dtype.
Tensor swiglu_packed(const Tensor& gate_up);
// dgate = dh · up · silu'(gate), dup = dh · silu(gate): fresh tensors in dh's dtype (all three share shape and dtype).
void swiglu_grad(const Tensor& dh, const Tensor& gate, const Tensor& up, Tensor& dgate, Tensor& dup);
// x += y (same element count): x F32 with y F32, BF16 or F16, or x and y of one dtype.
void add_to(Tensor& x, const Tensor& y);
// x *= s (in fp32).
void scale_by(Tensor& x, double s);
// I32 [rows]: per row of x [rows, V] the first index of its largest value, -1 for a row with a NaN or an infinity.
Tensor argmax_rows(const Tensor& x);

// Copies of x's last-dimension slices of widths `sizes` (summing to x's last extent), and the inverse. One strided
// row-copy kernel for all pieces; byte copies, so any dtype.
std::vector<Tensor> split_last(const Tensor& x, const std::vector<int64_t>& sizes);
Tensor concat_last(const std::vector<Tensor>& parts);  // parts share dtype and leading extents

}  // namespace gdn2::cuda
