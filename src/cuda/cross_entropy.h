// CUDA backend of the fused LM-head cross-entropy (include/gdn2/ops/dense.h, lm_head_cross_entropy); arguments
// validated by src/ops/dense.cpp.
#pragma once

#include <cstdint>

#include "gdn2/ops/dense.h"

namespace gdn2::cuda {

// h [N, D] and W [V, D] (F32, BF16 or F16, one dtype; D, V > 0); targets I32 [N] on either device, each in [-1, V)
// (checked by the caller), `count` of them >= 0. Rows in blocks of rows_per_block (0: automatic, the F32 logits block
// within 2^26 elements = 256 MB, in whole multiples of the rows spanning 256 bytes of h, so that blocks stay aligned;
// tests force small blocks): per block logits = h_blk W^T (cuBLASLt, F32), a row kernel writes the row losses
// (F32) and dlogits = (softmax - onehot) · grad_scale / count in W's dtype, then dh_blk = dlogits W and
// dW += dlogits^T h_blk (dW F32 or W's dtype). The loss sums the row losses on the host in row order (double).
// With want_grad, dh in h's dtype (zeros when count is 0); without, no dh and dW untouched. The scale is applied to
// dlogits before rounding (the products take no alpha), so F16 wants grad_scale / count near 1 (a loss scale).
LmLoss lm_head_loss(const Tensor& h, const Tensor& W, const Tensor& targets, int64_t count, bool want_grad, Tensor* dW,
                    double grad_scale, int64_t rows_per_block = 0);

}  // namespace gdn2::cuda
