// Linear-attention mixers on the GDN-2 op: GDN-2 (fla GatedDeltaNet2), KDA, SSD-like (b = 0) and Qwen3.5's
// Gated DeltaNet, forward (training, prefill, decode) and backward.
#pragma once

#include <string>

#include "gdn2/ops/gdn2.h"
#include "model/mixer.h"

namespace gdn2 {

class LinearAttention final : public Mixer {
 public:
  LinearAttention(const ModelConfig& c, LayerKind kind, std::string prefix, ParamStore& params);
  Tensor forward(const Tensor& x, LayerCache* cache, bool save, Tensor* residual = nullptr) override;
  LayerCache slot_cache(int64_t capacity, int64_t max_len, Device device, DType dtype,
                        DType state_dtype) const override;
  Tensor backward(const Tensor& dy) override;
  void release() override { saved_ = Saved{}; }

 private:
  struct Saved {
    Tensor x;
    Tensor pre_conv[3], post_conv[3];  // projections before / after conv + SiLU (q, k, v; or fused qkv in [0])
    Tensor f_low;                      // decay gate's low-rank projection
    Tensor b_sig, w_sig;               // sigmoid outputs (before the x2 of allow_neg_eigval)
    Gdn2Inputs rec;                    // the recurrence's inputs (q, k, v, gate pre-activation f with A_log, b, w)
    Tensor h, work;                    // the recurrence's chunk states and workspace for its backward (GPU)
    Tensor o, o_rstd, gate_low, gate;  // recurrence output, output-norm rstd, output gate (low rank, full)
    Tensor normed;                     // output norm result, input of the out projection
  };

  Param& p(const char* name) { return params_.at(prefix_ + name); }
  Gdn2Options rec_options(const Tensor& x) const;
  Tensor proj(const char* name, const Tensor& x, const char* bias = nullptr);
  // dx of a projection (added into *into when given); the weight's (and bias') gradients accumulated.
  Tensor proj_back(const char* name, const Tensor& dy, const Tensor& x, const char* bias = nullptr,
                   Tensor* into = nullptr);
  Tensor conv(int i, const char* name, const Tensor& x, LayerCache* cache, bool save);
  // The decode step of short conv i (its cache made on first use), its output split along the channels.
  std::vector<Tensor> conv_step(int i, const char* name, const Tensor& x, LayerCache& cache,
                                const std::vector<int64_t>& sizes);
  // conv's output split along the channels (split_last); a decode step writes the parts itself.
  std::vector<Tensor> conv_split(int i, const char* name, const Tensor& x, LayerCache* cache, bool save,
                                 const std::vector<int64_t>& sizes);
  Tensor conv_back(int i, const char* name, const Tensor& dy);

  LayerKind kind_;
  std::string prefix_;
  ParamStore& params_;
  int64_t D_, H_, K_, HV_, V_, Hg_, W_;
  bool neg_eig_;
  double norm_eps_;
  Saved saved_;
};

}  // namespace gdn2
