// Inputs for the Gdn2Options::gates_logits tests (CPU and CUDA): random GDN-2 inputs whose b and w hold logits over
// a wide range, and the same inputs with their sigmoid, the reference's gates.
#pragma once

#include <cmath>
#include <vector>

#include "gdn2/ops/dense.h"
#include "gdn2/ops/gdn2_random.h"

namespace gdn2::test {

struct GateLogitInputs {
  Gdn2Inputs logits, gates;
};

// w_is_b: w is the same tensor as b (head gates with HV heads, as the GDN layer passes them).
inline GateLogitInputs gate_logit_inputs(const Gdn2RandomSpec& spec, bool w_is_b) {
  GateLogitInputs r;
  Gdn2Inputs& logits = r.logits;
  logits = gdn2_random_inputs(spec);
  std::vector<double> b = logits.b.to_f64_vector(), w = logits.w.to_f64_vector();
  for (size_t i = 0; i < b.size(); ++i) b[i] = 3.0 * std::sin(0.7 * static_cast<double>(i) + 0.1);
  for (size_t i = 0; i < w.size(); ++i) w[i] = 2.5 * std::cos(0.3 * static_cast<double>(i));
  logits.b = Tensor::from_vector(logits.b.shape(), b).to(logits.b.dtype());
  logits.w = w_is_b ? logits.b : Tensor::from_vector(logits.w.shape(), w).to(logits.w.dtype());
  r.gates = logits;
  r.gates.b = sigmoid_forward(logits.b);
  r.gates.w = w_is_b ? r.gates.b : sigmoid_forward(logits.w);
  return r;
}

}  // namespace gdn2::test
