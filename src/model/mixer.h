// The token-mixer interface shared by linear-attention and softmax-attention layers, and their inference caches.
#pragma once

#include <cstdint>
#include <memory>

#include "gdn2/model/config.h"
#include "model/params.h"

namespace gdn2 {

// Per-layer inference state of one batch of sequences. Linear layers keep constant memory (state + conv caches);
// attention layers keep a KV cache that grows with the sequence.
struct LayerCache {
  Tensor conv[3];  // [B, C, W - 1] conv caches (q, k, v; or the fused qkv in conv[0])
  Tensor state;    // [B, HV, K, V] F32 recurrent state
  Tensor k, v;     // [B, T, Hkv, hd] KV cache; slots: [S, L, Hkv, hd] of fixed capacity
  int64_t length = 0;  // tokens seen so far
  // Slot decode (continuous batching, one token per sequence): I32 [N] on the model's device, sequence n's new token
  // at positions[n] and its length after it lengths[n]; k and v are then fixed-capacity slot caches.
  Tensor positions, lengths;
};

// Tokens up to which an inference forward runs a mixer's input projections as one product of its grouped weights and
// one split (decode and small prefill pieces, where launches dominate); training runs one product a weight.
inline constexpr int64_t kFusedProjectionRows = 1024;

class Mixer {
 public:
  virtual ~Mixer() = default;
  // x [B, T, D] -> y [B, T, D]. With a cache: continues from it and updates it (prefill and decode); without:
  // starts from an empty state. With `save`, keeps what backward() needs (training).
  // With `residual` (the output's shape) the block's residual add happens inside the output projection: at inference
  // into *residual, which is returned; with save into a new tensor, *residual kept as it is (the backward needs it).
  virtual Tensor forward(const Tensor& x, LayerCache* cache, bool save, Tensor* residual = nullptr) = 0;
  // Gradient of the last saved forward: accumulates parameter gradients, returns dx.
  virtual Tensor backward(const Tensor& dy) = 0;
  virtual void release() = 0;  // drops saved activations
  // An empty (zeroed) cache of fixed memory for `capacity` sequences of at most max_len tokens (KV caches in `dtype`,
  // recurrent states in `state_dtype`: F32, or BF16 on the GPU).
  virtual LayerCache slot_cache(int64_t capacity, int64_t max_len, Device device, DType dtype,
                                DType state_dtype) const = 0;
};

std::unique_ptr<Mixer> make_mixer(const ModelConfig& c, int64_t layer, ParamStore& params);

// A mixer's output projection x · weight^T with the residual add forward() promises (none without `residual`).
Tensor mixer_output(const Tensor& x, const Tensor& weight, bool save, Tensor* residual);

}  // namespace gdn2
