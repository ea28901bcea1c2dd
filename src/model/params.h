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
  Tensor value;    // master value in the model's dtype (F32, or F64 for finite-difference tests), on its device
  Tensor grad;     // like value; zero after zero_grad() (see grad_stale)
  Tensor compute;  // value rounded to the compute dtype, for the linear layers' weights and biases, the embedding and
                   // the LM head of a model computing below its parameters' precision (BF16 on the GPU); else undefined
  // zero_grad() leaves grad's memory as it is and sets this: the gradient is zero, and its first writer of the step
  // may write it instead of adding to it (a product with beta 0 or a copy: no memset pass, no read of old values).
  bool grad_stale = false;
  // What the forward reads: the compute copy when there is one, else the master value.
  const Tensor& w() const { return compute.defined() ? compute : value; }
  // The gradient to add into: zeroed first if it is stale.
  Tensor& grad_to_add();
  // grad += g (g of grad's element count): a copy when grad is stale and g has its dtype and device, else an add
  // (after zeroing a stale grad).
  void add_grad(const Tensor& g);
  // The gradient to write or add into, for a writer that can do either: *overwrite tells which (true when it was
  // stale; it no longer is).
  Tensor* grad_to_write(bool* overwrite);
};

// linear_backward into weight's gradient (and bias's when given): the weight gradient written by the product when it
// is stale, else added to; returns dx (added into *dx_into when given).
Tensor param_linear_backward(const Tensor& dy, const Tensor& x, Param& weight, Param* bias = nullptr,
                             Tensor* dx_into = nullptr);

class ParamStore {
 public:
  // Values zeroed; call init() or load weights. `compute` is the dtype the 2-D parameters (linear weights, embedding,
  // LM head) and the linear biases are read in: the model's dtype (no copies) or, on the GPU, BF16 / F16 below an F32
  // model (mixed precision: the other parameters, the gradients and the optimizer stay in the model's dtype).
  ParamStore(const ModelConfig& c, DType dtype, Device device = Device::cpu, DType compute = DType::f32);
  ParamStore(const ParamStore&) = delete;
  ParamStore& operator=(const ParamStore&) = delete;

  // Random initialisation by each spec's rule; each parameter's stream depends on (seed, name) only.
  void init(uint64_t seed, double initializer_range, int64_t num_layers);
  Param& at(const std::string& name);
  const Param& at(const std::string& name) const;
  bool contains(const std::string& name) const { return index_.count(name) != 0; }
  std::vector<Param>& all() { return params_; }
  const std::vector<Param>& all() const { return params_; }
  // p.value = t converted to the model's dtype and device (t has p's element count), and its compute copy redone.
  void set(Param& p, const Tensor& t);
  // Redoes p's compute copy from its value (after an update of the value in place).
  void refresh_compute(Param& p);
  // A group's weights (ParamSpec::group) as one [Σ out, in] matrix, members in spec order: the compute copies when
  // the model has them, else the values. The members' own tensors are views of its rows, so it is always current.
  const Tensor& group_weight(const std::string& group) const;
  // The members' names and row counts, in the order of group_weight's rows.
  const std::vector<std::string>& group_names(const std::string& group) const;
  const std::vector<int64_t>& group_rows(const std::string& group) const;
  // Every gradient zero: allocated zeros the first time, later marked stale (Param::grad_stale) and left to its first
  // writer of the step. Each training step's backward ends with settle_grads().
  void zero_grad();
  // Zeroes the gradients still stale (parameters that received nothing), so that every gradient holds its value.
  void settle_grads();
  DType dtype() const { return dtype_; }
  DType compute_dtype() const { return compute_; }
  Device device() const { return device_; }

 private:
  DType dtype_, compute_;
  Device device_;
  std::vector<Param> params_;
  std::unordered_map<std::string, size_t> index_;
  struct Group {
    Tensor value, compute;  // [Σ out, in]; compute undefined without compute copies
    std::vector<std::string> names;
    std::vector<int64_t> rows;
  };
  std::unordered_map<std::string, Group> groups_;
  const Group& group(const std::string& name) const;
  // Writes src (same element count and dtype) into dst's memory (a member's view of its group).
  static void write_into(Tensor& dst, const Tensor& src);
};

}  // namespace gdn2
