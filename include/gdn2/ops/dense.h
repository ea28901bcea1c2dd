// The model's dense ops: linear layers, embeddings, SwiGLU and activations, and the fused LM-head cross-entropy.
//
// All compute in the dtype of their main input, F32 or F64 (F64 lets tests take finite differences of a whole
// model); every tensor of one call must share that dtype. Gradients are ADDED into the parameter-gradient tensors
// passed by pointer (so micro-batches accumulate); a null pointer skips that gradient.
#pragma once

#include <cstdint>
#include <vector>

#include "gdn2/tensor.h"

namespace gdn2 {

// y [..., out] = x [..., in] · weight[out, in]^T + bias [out] (bias optional).
// CUDA tensors (cuBLASLt): x F32, BF16 or F16 with weight, bias and dy in x's dtype, fp32 accumulation, y and dx in x's
// dtype; dweight and dbias may be F32 (the master gradients of a low-precision layer) or x's dtype; in, out > 0.
Tensor linear_forward(const Tensor& x, const Tensor& weight, const Tensor& bias = {});
// Returns dx [..., in]; dweight += dy^T x; dbias += Σ_rows dy.
Tensor linear_backward(const Tensor& dy, const Tensor& x, const Tensor& weight, Tensor* dweight, Tensor* dbias);

// y [..., D] = table[ids] for ids I32/I64 [...] in [0, V); table [V, D]. Out-of-range ids throw ValueError.
Tensor embedding_forward(const Tensor& ids, const Tensor& table);
// dtable += scatter of dy rows at ids.
void embedding_backward(const Tensor& dy, const Tensor& ids, Tensor& dtable);

// Elementwise activations; backward returns dx.
Tensor sigmoid_forward(const Tensor& x);
Tensor sigmoid_backward(const Tensor& dy, const Tensor& y);  // y = sigmoid(x)
Tensor silu_forward(const Tensor& x);
Tensor silu_backward(const Tensor& dy, const Tensor& x);
// SwiGLU: h = silu(gate) ⊙ up, both [..., F].
Tensor swiglu_forward(const Tensor& gate, const Tensor& up);
void swiglu_backward(const Tensor& dh, const Tensor& gate, const Tensor& up, Tensor& dgate, Tensor& dup);
// y = a ⊙ b and its backward (da = dy ⊙ b, db = dy ⊙ a).
Tensor mul_forward(const Tensor& a, const Tensor& b);
// Splits x [..., sum(sizes)] along the last dim into contiguous copies, and the inverse.
std::vector<Tensor> split_last(const Tensor& x, const std::vector<int64_t>& sizes);
Tensor concat_last(const std::vector<Tensor>& parts);
// x += y (same shape and dtype); x must be writable.
void add_inplace(Tensor& x, const Tensor& y);
// x *= s.
void scale_inplace(Tensor& x, double s);

// Fused LM head and cross-entropy over rows: logits = h [N, D] · W [V, D]^T, loss = mean over rows whose target
// (I32 [N]) is >= 0 of -log softmax(logits)[target]; targets of -1 are ignored; others must be < V.
// With want_grad: dh (returned, [N, D]) and dW += grad_scale · dLoss/dW, scaled by grad_scale too.
// Never materialises all N x V logits at once (rows in blocks).
struct LmLoss {
  double loss = 0;     // mean over counted rows
  int64_t count = 0;   // rows counted
  Tensor dh;           // when want_grad
};
LmLoss lm_head_cross_entropy(const Tensor& h, const Tensor& W, const Tensor& targets, bool want_grad, Tensor* dW,
                             double grad_scale = 1.0);

}  // namespace gdn2
