// Checks of the model layer against reference outputs from independent code (fla's GDN-2 layer, HF transformers).
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace gdn2 {

struct GoldenCheck {
  std::string what;                                     // a one-line description of what was run
  std::vector<std::pair<std::string, double>> errors;   // field -> relative RMS error (or mismatches for tokens)
  bool pass = true;
};

// A file in the format of tests/data/fla_gdn2_layer.safetensors: fla GatedDeltaNet2 weights "layer.*", the layer's
// constructor arguments as JSON in the metadata key "config", input x [B, T, D], output y, and optionally the
// cotangent dy with gradients dx and "grad.layer.*". Runs gdn2's layer forward (and backward when dy is present)
// and compares; passes when every relative RMS error is <= budget.
GoldenCheck fla_layer_check(const std::string& path, double budget = 5e-3);

// An HF-format model directory with expected.safetensors (input_ids [B, T], logits [B, T, V], greedy_ids [1, P + N]:
// a P-token prompt from input_ids[0] followed by N greedy tokens). Checks the logits of a full forward (relative
// RMS <= logits_budget) and that prefill + recurrent decode reproduces the greedy tokens exactly. Without
// expected.safetensors it only loads the model and runs a forward on a few tokens.
GoldenCheck model_check(const std::string& dir, double logits_budget = 1e-4);

}  // namespace gdn2
