// CUDA backends of the model's small ops (include/gdn2/ops/dense.h, norm.h, rope.h, short_conv.h): pointwise
// activations, embedding, the fused LM-head cross-entropy, gated RMSNorm, RoPE and the short causal convolution.
// Arguments are validated by src/ops/*.cpp. Activations are F32, BF16 or F16 and results keep their dtype; statistics
// and parameter gradients are F32; all arithmetic is fp32; no floating-point atomics (bitwise reproducible).
#pragma once

#include <cstdint>

#include "gdn2/ops/dense.h"
#include "gdn2/ops/norm.h"
#include "gdn2/ops/short_conv.h"

namespace gdn2::cuda {

enum class Pointwise { sigmoid_forward, silu_forward, sigmoid_backward, silu_backward, swiglu_forward, mul_forward };
// y = op(a) or op(a, b), elementwise, in a's dtype (b like a).
Tensor pointwise(Pointwise op, const Tensor& a, const Tensor& b);
void swiglu_backward(const Tensor& dh, const Tensor& gate, const Tensor& up, Tensor& dgate, Tensor& dup);
void add_inplace(Tensor& x, const Tensor& y);  // x F32 with y of any float dtype, or both of one dtype
void scale_inplace(Tensor& x, double s);

// ids I32/I64 on either device with every id checked in [0, V) by the caller; table [V, D].
Tensor embedding_forward(const Tensor& ids, const Tensor& table);
// dtable (F32) += rows of dy scattered to ids: rows sorted by id on the host, each id's rows summed in row order.
void embedding_backward(const Tensor& dy, const Tensor& ids, Tensor& dtable);
// targets I32 [N] on either device, checked by the caller; rows in blocks of at most rows_per_block (0: automatic).
LmLoss lm_head_cross_entropy(const Tensor& h, const Tensor& W, const Tensor& targets, bool want_grad, Tensor* dW,
                             double grad_scale, int64_t rows_per_block = 0);

// out [cols] (F32, fresh) = Σ over rows of x [rows, cols] F32, in a fixed order.
Tensor column_sum(const Tensor& x, int64_t rows, int64_t cols);

// x [rows, D]; weight [D] (F32 or x's dtype) or undefined; gate like x or undefined.
RmsNormResult rms_norm_forward(const Tensor& x, const Tensor& weight, const Tensor& gate, const RmsNormOptions& o,
                               int64_t rows, int64_t D);
RmsNormGrads rms_norm_backward(const Tensor& dy, const Tensor& x, const Tensor& rstd, const Tensor& weight,
                               const Tensor& gate, const RmsNormOptions& o, int64_t rows, int64_t D);

// x [B, T, H, D]; positions: start + t, or pos (I32/I64 [B, T], either device) when defined; sign -1 rotates back.
Tensor rope(const Tensor& x, int64_t start, const Tensor& pos, double theta, int64_t rotary_dim, int sign);

// x [B, T, C]; weight [C, W] or [C, 1, W] (F32 or x's dtype); bias [C] or undefined; caches [B, C, W - 1] (F32 or x's
// dtype) or undefined; final_cache F32.
ShortConvResult short_conv_forward(const Tensor& x, const Tensor& weight, const Tensor& bias, ConvActivation act,
                                   const Tensor& initial_cache, bool output_final_cache);
ShortConvGrads short_conv_backward(const Tensor& dy, const Tensor& x, const Tensor& weight, const Tensor& bias,
                                   ConvActivation act, const Tensor& initial_cache, const Tensor& d_final_cache);
// x [N, C]; cache [N, C, W - 1] F32, updated in place.
Tensor short_conv_step(const Tensor& x, Tensor& cache, const Tensor& weight, const Tensor& bias, ConvActivation act);

}  // namespace gdn2::cuda
