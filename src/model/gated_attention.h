// Gated softmax attention as Qwen3.5 (q/k RMSNorm, partial RoPE, GQA, sigmoid output gate), full or sliding window,
// forward (training, prefill, decode with a KV cache) and backward.
#pragma once

#include <string>

#include "gdn2/ops/attention.h"
#include "model/mixer.h"

namespace gdn2 {

class GatedAttention final : public Mixer {
 public:
  GatedAttention(const ModelConfig& c, LayerKind kind, std::string prefix, ParamStore& params);
  Tensor forward(const Tensor& x, LayerCache* cache, bool save, Tensor* residual = nullptr) override;
  Tensor backward(const Tensor& dy) override;
  void release() override { saved_ = Saved{}; }
  LayerCache slot_cache(int64_t capacity, int64_t max_len, Device device, DType dtype,
                        DType state_dtype) const override;

 private:
  struct Saved {
    Tensor x, q_raw, k_raw, q_rstd, k_rstd, q, k, v, o, lse, gate_sig, gated;
  };
  Param& p(const char* name) { return params_.at(prefix_ + name); }
  // x's projections before the norms: the query and the output gate [B, T, Hq, hd], the key and the value
  // [B, T, Hkv, hd]; `fused`: one product with the layer's q | k | v weights and one split.
  struct Projections {
    Tensor q, gate, k, v;
  };
  Projections project(const Tensor& x, bool fused);
  // x's q | k | v as one product with the layer's grouped weights: [.., (2 Hq + 2 Hkv) hd], per head q and its output
  // gate side by side, then k, then v.
  Tensor project_fused(const Tensor& x);
  Tensor rope(const Tensor& x, int64_t start) const;
  Tensor rope_back(const Tensor& dy) const;
  Tensor decode_slots(const Tensor& x, LayerCache& cache, Tensor* residual);

  std::string prefix_;
  ParamStore& params_;
  int64_t D_, Hq_, Hkv_, hd_, rotary_dim_;
  double theta_, eps_;
  AttentionOptions attn_;
  Saved saved_;
};

}  // namespace gdn2
