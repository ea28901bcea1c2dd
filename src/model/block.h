// One pre-norm residual block: x += mixer(RMSNorm(x)); x += SwiGLU(RMSNorm(x)).
#pragma once

#include <memory>

#include "model/mixer.h"

namespace gdn2 {

class Block {
 public:
  Block(const ModelConfig& c, int64_t layer, ParamStore& params);
  // Without save (inference) x's memory is reused: both residual adds happen inside the output products, into x, and
  // the returned tensor is x. With save, x is kept for the backward and left as it is.
  Tensor forward(Tensor x, LayerCache* cache, bool save);
  Tensor backward(const Tensor& dy);
  void release();
  LayerCache slot_cache(int64_t capacity, int64_t max_len, Device device, DType dtype, DType state_dtype) const {
    return mixer_->slot_cache(capacity, max_len, device, dtype, state_dtype);
  }

 private:
  Param& p(const char* name) { return params_.at(prefix_ + name); }

  std::string prefix_;
  ParamStore& params_;
  double eps_;
  std::unique_ptr<Mixer> mixer_;
  struct Saved {
    Tensor x, n1, r1, h, n2, r2, gate, up, act;
  } saved_;
};

}  // namespace gdn2
