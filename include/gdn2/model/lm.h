// The hybrid GDN-2 language model: embeddings, pre-norm blocks (mixer + SwiGLU), final norm, LM head; training
// forward/backward and cached inference (chunked prefill, constant-memory recurrent decode, KV cache).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "gdn2/model/config.h"
#include "gdn2/tensor.h"

namespace gdn2 {

class ParamStore;
struct LayerCache;
class Block;

// Per-sequence-batch inference state: one cache per layer and the tokens seen so far.
struct InferenceState {
  std::vector<LayerCache> layers;
  int64_t length = 0;
  int64_t batch = 0;
  int64_t max_len = 0;  // > 0: fixed-memory slots for `batch` sequences of at most max_len tokens (new_slots)
  InferenceState();
  ~InferenceState();
  InferenceState(InferenceState&&) noexcept;
  InferenceState& operator=(InferenceState&&) noexcept;
  // Bytes held (constant for linear layers, growing for attention KV caches).
  int64_t bytes() const;
  // Bytes one decode step over every sequence moves at least (slots): the linear layers' states and conv caches read
  // and written, and the attention layers' KV caches read up to `length` tokens a sequence.
  int64_t decode_bytes(int64_t length) const;
};

class LanguageModel {
 public:
  // Parameters zeroed, in `dtype` (F32, or F64 for finite-difference tests) on `device`. The model computes in
  // `compute`: by default its dtype on the CPU, and BF16 on the GPU (mixed precision: BF16 matrices and activations,
  // fp32 accumulation, F32 master weights, gradients, optimizer and recurrent state); F32 on the GPU is allowed.
  explicit LanguageModel(const ModelConfig& config, DType dtype = DType::f32, Device device = Device::cpu,
                         std::optional<DType> compute = std::nullopt);
  ~LanguageModel();
  LanguageModel(const LanguageModel&) = delete;
  LanguageModel& operator=(const LanguageModel&) = delete;

  void init_random(uint64_t seed);
  const ModelConfig& config() const { return config_; }
  ParamStore& params() { return *params_; }
  const ParamStore& params() const { return *params_; }
  DType dtype() const { return dtype_; }
  Device device() const;
  DType compute_dtype() const;
  int64_t num_params() const;  // elements of all parameters (a tied head counted once)

  // Training. ids, targets I32 [B, T] (targets -1 are ignored). Returns the mean cross-entropy. With `train`,
  // keeps activations and the loss gradient (scaled by grad_scale, e.g. 1 / accumulation steps) for backward().
  double forward_loss(const Tensor& ids, const Tensor& targets, bool train, double grad_scale = 1.0);
  // Accumulates parameter gradients of the last training forward (call params().zero_grad() per step).
  void backward();

  // Inference. ids I32 [B, T]. With a state, continues from it and updates it (prefill: T > 1, chunked; decode:
  // T = 1, recurrent); without, runs from scratch. Returns logits [B, T, V], or [B, 1, V] with last_only.
  Tensor forward_logits(const Tensor& ids, InferenceState* state = nullptr, bool last_only = false);
  InferenceState new_state(int64_t batch) const;

  // Serving with continuous batching. Slots: fixed memory for `capacity` sequences of at most max_len tokens each
  // (linear layers: conv caches and the F32 recurrent state per sequence; attention layers: KV caches of max_len).
  InferenceState new_slots(int64_t capacity, int64_t max_len, DType state_dtype = DType::f32) const;
  // Copies sequence seq_row of a prefill's state (`seq`, at most max_len tokens) into slot `row`.
  void load_slot(InferenceState& slots, int64_t row, const InferenceState& seq, int64_t seq_row = 0) const;
  // Copies slot `from` over slot `to` (when a sequence leaves, the last busy slot takes its place).
  void move_slot(InferenceState& slots, int64_t from, int64_t to) const;
  // One token for each of the first N = ids.numel() slots: ids, positions (where each new token sits) and lengths
  // (positions + 1), I32 [N] on the model's device. Returns logits [N, V]. On the GPU nothing here waits for the
  // device and the device-side values are not checked (the caller vouches for them), so that a step can be captured
  // in a CUDA graph; on the CPU they are checked (ValueError).
  Tensor decode_slots(const Tensor& ids, const Tensor& positions, const Tensor& lengths, InferenceState& slots);

 private:
  Tensor embed(const Tensor& ids, bool check_gpu_ids = true) const;
  Tensor head_logits(const Tensor& h) const;
  const Tensor& head_weight() const;

  ModelConfig config_;
  DType dtype_;
  std::unique_ptr<ParamStore> params_;
  std::vector<std::unique_ptr<Block>> blocks_;
  // saved by the training forward
  Tensor saved_ids_, saved_final_in_, saved_final_rstd_, saved_final_out_, saved_dh_;
};

}  // namespace gdn2
