// AdamW with decoupled weight decay over a ParamStore, global-norm gradient clipping, and state save/load.
#pragma once

#include <string>
#include <vector>

#include "model/params.h"

namespace gdn2 {

class AdamW {
 public:
  struct Options {
    double beta1 = 0.9, beta2 = 0.95, eps = 1e-8, weight_decay = 0.1;
  };
  AdamW(ParamStore& params, Options o);
  // Global L2 norm of all gradients. When above `max_norm` (> 0), the next step() reads the gradients scaled down to
  // that norm (the factor applied inside the update; the gradient tensors themselves are left as they are).
  double clip_grad_norm(double max_norm);
  void step(double lr);
  int64_t steps() const { return t_; }
  // Moments as tensors "m.<param>" / "v.<param>" plus the step count, for checkpoints.
  void save(const std::string& path) const;
  void load(const std::string& path);

 private:
  ParamStore& params_;
  Options o_;
  int64_t t_ = 0;
  double grad_scale_ = 1.0;  // the clipping factor for the next step
  std::vector<Tensor> m_, v_;  // F32, per parameter (F64 for F64 models)
};

}  // namespace gdn2
