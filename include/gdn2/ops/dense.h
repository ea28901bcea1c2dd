// The model's dense ops: linear layers, embeddings, SwiGLU and activations, and the fused LM-head cross-entropy.
//
// On the CPU all compute in the dtype of their main input, F32 or F64 (F64 lets tests take finite differences of a
// whole model); every tensor of one call must share that dtype. Gradients are ADDED into the parameter-gradient tensors
// passed by pointer (so micro-batches accumulate); a null pointer skips that gradient.
//
// CUDA (tensors on the GPU; bf16 mixed precision): activations F32, BF16 or F16, every operand of one call on the GPU
// in one dtype and results in it, all arithmetic in fp32; parameter gradients F32 (master gradients) or the
// activations' dtype, as stated per op. Only ids and targets may stay on the CPU (copied up). Kernels run on the legacy
// default stream; nothing waits for the device except where an op must read device values (GPU ids and targets are
// range-checked before anything the caller holds is written; the loss is summed on the host). Bad calls throw:
// ShapeError for another device or shape, DTypeError for F64 or a dtype mix outside the contract, ValueError for an id
// or target out of range.
#pragma once

#include <cstdint>
#include <vector>

#include "gdn2/tensor.h"

namespace gdn2 {

// y [..., out] = x [..., in] · weight[out, in]^T + bias [out] (bias optional).
// CUDA tensors (cuBLASLt): x F32, BF16 or F16 with weight, bias and dy in x's dtype, fp32 accumulation, y and dx in x's
// dtype; dweight and dbias may be F32 (the master gradients of a low-precision layer) or x's dtype; in, out > 0.
// With `into` (y's shape, x's dtype and device), y is added into that tensor in the same product (a residual add with no
// pass of its own) and the tensor is returned. With `residual` (the same contract) y = residual + x·weight^T + bias is
// a new tensor, the add again inside the product, and residual is left as it is (training keeps it); not with `into`.
Tensor linear_forward(const Tensor& x, const Tensor& weight, const Tensor& bias = {}, Tensor* into = nullptr,
                      const Tensor& residual = {});
// Returns dx [..., in]; dweight += dy^T x (dweight = dy^T x with dweight_overwrite: its old contents are not read);
// dbias += Σ_rows dy. With `dx_into` (x's shape, dtype and device) dx is added into that tensor in the same product (no
// pass of its own) and the tensor is returned.
Tensor linear_backward(const Tensor& dy, const Tensor& x, const Tensor& weight, Tensor* dweight, Tensor* dbias,
                       Tensor* dx_into = nullptr, bool dweight_overwrite = false);

// y [..., D] = table[ids] for ids I32/I64 [...] in [0, V); table [V, D]. Out-of-range ids throw ValueError.
// CUDA: table F32, BF16 or F16, y in its dtype; ids on either device (GPU ids are range-checked by the kernel, which
// costs one wait for the device; with check_gpu_ids false they are not, nothing waits, and a row whose id is outside
// [0, V) comes out zero).
Tensor embedding_forward(const Tensor& ids, const Tensor& table, bool check_gpu_ids = true);
// dtable += scatter of dy rows at ids (dy [..., D] with ids' element count of rows).
// CUDA: dtable F32, dy F32, BF16 or F16; ids on either device (GPU ids are copied down). Bitwise deterministic: each
// id's rows summed in row order, no atomics.
void embedding_backward(const Tensor& dy, const Tensor& ids, Tensor& dtable);

// Elementwise activations; backward returns dx. CUDA: operands share one dtype, results in it.
Tensor sigmoid_forward(const Tensor& x);
Tensor sigmoid_backward(const Tensor& dy, const Tensor& y);  // y = sigmoid(x)
Tensor silu_forward(const Tensor& x);
Tensor silu_backward(const Tensor& dy, const Tensor& x);
// SwiGLU: h = silu(gate) ⊙ up, both [..., F].
Tensor swiglu_forward(const Tensor& gate, const Tensor& up);
// The same of the packed gate_up [..., 2F] (gate in the first half of the last dim, up in the second): [..., F].
Tensor swiglu_forward(const Tensor& gate_up);
void swiglu_backward(const Tensor& dh, const Tensor& gate, const Tensor& up, Tensor& dgate, Tensor& dup);
// y = a ⊙ b and its backward (da = dy ⊙ b, db = dy ⊙ a).
Tensor mul_forward(const Tensor& a, const Tensor& b);
// Splits x [..., sum(sizes)] along the last dim into contiguous parts, and the inverse (parts share dtype, device and
// leading extents). Byte copies, so any dtype, on either device; on the GPU one kernel copies every part. When x has a
// single row (decode of one sequence) and every part starts 16-byte aligned, the parts are views of x: no copy, so they
// change with x and writing one writes x.
std::vector<Tensor> split_last(const Tensor& x, const std::vector<int64_t>& sizes);
Tensor concat_last(const std::vector<Tensor>& parts);
// x += y (same element count and dtype); x must be writable. CUDA: also x F32 with y BF16 or F16 (a low-precision
// gradient added into an F32 master gradient).
void add_inplace(Tensor& x, const Tensor& y);
// x *= s.
void scale_inplace(Tensor& x, double s);

// Greedy pick per row: I32 [rows] on x's device, for x [rows, V] (V >= 1, any float dtype): the index of the row's
// largest value (the first on ties), or -1 when the row holds a NaN or an infinity.
Tensor argmax_rows(const Tensor& x);

// Fused LM head and cross-entropy over rows: logits = h [N, D] · W [V, D]^T, loss = mean over rows whose target
// (I32 [N]) is >= 0 of -log softmax(logits)[target]; targets of -1 are ignored; others must be < V.
// With want_grad: dh (returned, [N, D]) and dW += grad_scale · dLoss/dW, scaled by grad_scale too.
// Never materialises all N x V logits at once (rows in blocks). No counted row: loss 0, dh zero, dW untouched.
// CUDA: h and W F32, BF16 or F16 (one dtype; D, V > 0), targets on either device (checked on the host: one wait for
// GPU targets), dW F32 or W's dtype, dh in h's dtype; F32 logits blocks of at most 256 MB, products on cuBLASLt with
// fp32 accumulation, dlogits rounded to W's dtype; the loss sums per-row losses in row order (deterministic).
// F16 needs grad_scale to act as a loss scale (grad_scale / count near 1), else small dlogits flush in F16.
struct LmLoss {
  double loss = 0;     // mean over counted rows
  int64_t count = 0;   // rows counted
  Tensor dh;           // when want_grad
};
LmLoss lm_head_cross_entropy(const Tensor& h, const Tensor& W, const Tensor& targets, bool want_grad, Tensor* dW,
                             double grad_scale = 1.0);

}  // namespace gdn2
