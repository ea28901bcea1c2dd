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
//
// On the GPU (q a CUDA tensor, in a build with the CUDA backend): every tensor on q's device (else ShapeError); q, k, v
// and the backward's do and o in one dtype, F32, BF16 or F16 (F64 or mixed dtypes: DTypeError); D <= 256 and
// B, Hq <= 65535 (UnsupportedError beyond). o, dq, dk, dv come in q's dtype, lse in F32 (the backward takes it F32).
// The arithmetic is fp32 (scores, softmax, accumulators). BF16/F16 with D = 64 or 128 (the forward also 256) run
// FlashAttention-2 style tensor-core kernels, which round the probabilities P and dS to the input dtype for their
// products, as FlashAttention does; other head dims and F32 run fp32 kernels on CUDA cores. No atomics: the results
// are bitwise reproducible run to run. The kernels run on the legacy default stream. With repeated_shape, causal BF16/F16
// self-attention (Tq = Tk, no window, D a multiple of 8 up to 128) runs cuDNN's fused attention instead where the build
// has it (GDN2_CUDNN_ATTENTION=0 turns it off), with its deterministic backward.
#pragma once

#include <cstdint>
#include <optional>

#include "gdn2/ops/norm.h"
#include "gdn2/ops/rope.h"
#include "gdn2/tensor.h"

namespace gdn2 {

struct AttentionOptions {
  double scale = 0.0;  // softmax scale, finite and >= 0; 0 means 1 / sqrt(D)
  int64_t window = 0;  // >= 0; 0: full causal; W > 0: each query sees its W most recent keys, itself included
  // The caller runs this exact shape again and again (training steps): on the GPU the call may then take cuDNN's fused
  // attention, which builds a plan per shape at its first use (about 0.1 s) and keeps it. Left false (a prompt's
  // prefill, whose length changes from request to request), it runs gdn2's own kernels, which build nothing.
  bool repeated_shape = false;
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

// Decode against per-sequence KV caches of fixed capacity (continuous batching: sequences of different lengths):
//   q         [N, Hq, D], one new query per sequence
//   k_cache   [S, L, Hkv, D] with S >= N; sequence n owns row n; v_cache likewise
//   lengths   I32 [N] on q's device: sequence n's query sits at position lengths[n] − 1 and sees the keys
//             [max(0, lengths[n] − W), lengths[n]) of its row (its own key already written there; W the window, 0: all)
//   gate      optional [N, Hq, D] of q's dtype and device: the output is o ⊙ gate (a gated attention's output gate,
//             multiplied in before the output is rounded to its dtype)
// Returns o [N, Hq, D] in q's dtype (the CPU: F32, F64 for F64 q). q, k_cache and v_cache share one dtype.
// Values of `lengths` are checked on the CPU (1 <= len <= L, ValueError); on the GPU they are read by the kernels
// without a wait (so that a decode step can be captured in a CUDA graph): the caller vouches for them, and a length
// outside [0, L] is clamped into it (0: a zero output row).
Tensor attention_decode(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache, const Tensor& lengths,
                        const AttentionOptions& options = {}, const Tensor& gate = Tensor());

// Writes one new key (or value) per sequence into a cache: cache [S, L, Hkv, D], x [N, Hkv, D] (N <= S) in the
// cache's dtype, positions I32 [N] on the cache's device: cache[n, positions[n]] = x[n]. On the CPU positions must be
// in [0, L) (ValueError); on the GPU they are read without a wait and a row whose position is outside [0, L) is
// skipped.
void kv_cache_write(Tensor& cache, const Tensor& x, const Tensor& positions);

// A decode step's attention inputs, one token per sequence, from the gated attention layer's fused projection:
//   qkv [N, (2 Hq + 2 Hkv) D], each row holding per query head q and its output gate side by side ([Hq, 2, D]), then
//   k [Hkv, D], then v [Hkv, D] (q_proj | k_proj | v_proj as one product).
// q and k are RMS-normed over D, each with its weight ([D], or undefined for none; norm.zero_centred applies it as
// 1 + weight), then, with `rope`, rotated at positions[n] (RopeOptions, rotary_dim 0: all of D); k and v are written
// into the caches [S, L, Hkv, D] at positions[n] as kv_cache_write does. Returns the rotated q [N, Hq, D] and the
// sigmoid of the output gate [N, Hq, D], in qkv's dtype. qkv and the caches share one dtype and device; the weights
// share one dtype. The CPU splits the rows and runs rms_norm_forward, rope_forward, kv_cache_write and
// sigmoid_forward in turn, rounding each result to qkv's dtype; the GPU does the same arithmetic (cos and sin in
// double) in one launch, D <= 256, reading positions without a wait, and a position outside [0, L) there writes
// nothing (the CPU refuses it: ValueError). GDN2_FUSED_DECODE_INPUTS=0 makes the GPU run the ops in turn as well.
struct AttentionDecodeInputs {
  Tensor q, gate;
};
AttentionDecodeInputs attention_decode_inputs(const Tensor& qkv, int64_t Hq, int64_t Hkv, const Tensor& q_weight,
                                              const Tensor& k_weight, const RmsNormOptions& norm,
                                              const std::optional<RopeOptions>& rope, Tensor& k_cache,
                                              Tensor& v_cache, const Tensor& positions);

}  // namespace gdn2
