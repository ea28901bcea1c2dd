// Causal grouped-query softmax attention with an optional sliding window (the hybrid model's attention layers),
// forward and FlashAttention-style backward.
//
//   o[b, i, h] = Σ_j softmax_j(scale · q[b, i, h] · k[b, j, h / G]) · v[b, j, h / G],   G = Hq / Hkv
//
// The queries are the LAST Tq positions of the key sequence: query i sits at absolute position p = Tk − Tq + i and
// sees the keys j with j <= p, and, with a window W > 0, also j > p − W (W keys counting itself, HF/Mistral
// sliding_window). Tq = Tk is training or a whole prefill, Tq < Tk a chunked prefill or decode (Tq = 1) against a
// KV cache that already holds the new tokens' keys and values. Query head h reads kv head h / G (HF repeat_kv).
// Every query sees at least its own key, so no row is ever fully masked.
//
// Shape contract:
//   q         [B, Tq, Hq, D];  k, v [B, Tk, Hkv, D];  Hkv >= 1, D >= 1, Hq % Hkv == 0, Tq <= Tk (B or Tq may be 0)
//   o         [B, Tq, Hq, D]
//   lse       [B, Hq, Tq]: log Σ_j exp(scale · q·k_j) over the keys row i sees (natural log, scale included)
//   do        like o; the backward's o and lse are the forward's outputs
//   dq like q; dk, dv like k and v (summed over the Hq / Hkv query heads of a group in a fixed order, so the
//   result is bitwise the same for any thread count)
// Inputs may be any float dtype. Computation is in double when q is F64, else in float; every output and gradient
// is F64 or F32 accordingly. Memory beyond the outputs is O(rows × Tk) per thread: the score matrix is never
// materialised, the backward recomputes the probabilities from lse.
#pragma once

#include <cstdint>

#include "gdn2/tensor.h"

namespace gdn2 {

struct AttentionOptions {
  double scale = 0.0;  // softmax scale, finite and >= 0; 0 means 1 / sqrt(D)
  int64_t window = 0;  // >= 0; 0: full causal; W > 0: each query sees its W most recent keys, itself included
};

struct AttentionResult {
  Tensor o;    // [B, Tq, Hq, D]
  Tensor lse;  // [B, Hq, Tq]
};

struct AttentionGrads {
  Tensor dq;  // like q
  Tensor dk;  // like k
  Tensor dv;  // like v
};

AttentionResult attention_forward(const Tensor& q, const Tensor& k, const Tensor& v,
                                  const AttentionOptions& options = {});

// Gradients of Σ o ⊙ do; q, k, v and options are the forward's, o and lse its outputs.
AttentionGrads attention_backward(const Tensor& d_o, const Tensor& q, const Tensor& k, const Tensor& v,
                                  const Tensor& o, const Tensor& lse, const AttentionOptions& options = {});

}  // namespace gdn2
