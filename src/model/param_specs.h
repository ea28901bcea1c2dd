// The one list of a model's parameters — HF-style names, shapes, initialisation and weight decay — per config.
#pragma once

#include <string>
#include <vector>

#include "gdn2/model/config.h"
#include "gdn2/tensor.h"

namespace gdn2 {

enum class ParamInit {
  normal,           // N(0, initializer_range)
  normal_residual,  // N(0, initializer_range / sqrt(2 · layers)): projections back into the residual stream
  zeros,
  ones,
  conv,             // U(-1/sqrt(W), 1/sqrt(W)): PyTorch's depthwise Conv1d default
  a_log,            // log U(1, 16) (fla)
  dt_bias,          // inverse softplus of exp(U(log 1e-3, log 1e-1)) (fla / Mamba)
};

struct ParamSpec {
  std::string name;
  Shape shape;
  ParamInit init = ParamInit::normal;
  bool decay = true;  // AdamW weight decay: weights yes; A_log, dt_bias, norms, biases no
  // Linear weights of one input that inference multiplies in one product ("<prefix>in", "<prefix>mlp.gate_up"): the
  // store keeps a group's weights as consecutive rows of one matrix. Empty: none.
  std::string group = {};
};

std::vector<ParamSpec> model_param_specs(const ModelConfig& c);
// Names of layer i's mixer and block parameters start with "model.layers.<i>."; `mixer_prefix` is that plus
// "linear_attn." or "self_attn.".
std::string layer_prefix(int64_t layer);
std::string mixer_prefix(const ModelConfig& c, int64_t layer);

}  // namespace gdn2
