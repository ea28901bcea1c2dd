// A model's parameters and their gradients, created from model_param_specs and found by name.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "model/param_specs.h"

namespace gdn2 {

struct Param {
  ParamSpec spec;
  Tensor value;  // model dtype (F32, or F64 for finite-difference tests)
  Tensor grad;   // same shape and dtype; zeros after zero_grad()
};

class ParamStore {
 public:
  ParamStore(const ModelConfig& c, DType dtype);  // values zeroed; call init() or load weights
  ParamStore(const ParamStore&) = delete;
  ParamStore& operator=(const ParamStore&) = delete;

  // Random initialisation by each spec's rule; each parameter's stream depends on (seed, name) only.
  void init(uint64_t seed, double initializer_range, int64_t num_layers);
  Param& at(const std::string& name);
  const Param& at(const std::string& name) const;
  bool contains(const std::string& name) const { return index_.count(name) != 0; }
  std::vector<Param>& all() { return params_; }
  const std::vector<Param>& all() const { return params_; }
  void zero_grad();
  DType dtype() const { return dtype_; }

 private:
  DType dtype_;
  std::vector<Param> params_;
  std::unordered_map<std::string, size_t> index_;
};

}  // namespace gdn2
