// Seeded random GDN-2 problems in every gate mode (GVA, varlen, extreme gates), for tests, checks and benchmarks.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "gdn2/ops/gdn2.h"

namespace gdn2 {

enum class GateRange { normal, near_zero, very_negative };  // g ~ -exp(N(-2, 1.5)), g ≈ -1e-4, g in [-35, -5]

struct Gdn2RandomSpec {
  int64_t B = 1, T = 64, H = 2, HV = 2, K = 32, V = 32;
  std::vector<int64_t> seqlens;                                          // non-empty: packed batch, B = 1
  std::string g_form = "channel", b_form = "channel", w_form = "channel";  // channel | head | none
  int64_t g_heads = 0, b_heads = 0;                                      // 0 means H
  bool h0 = true;
  bool l2norm = true;   // raw q, k and in-op normalisation; false gives unit-norm q, k
  GateRange g_range = GateRange::normal;
  double b_max = 1.0;   // 2 with allow_neg_eigval
  double b_fixed = -1;  // >= 0: every b equals this value
  DType dtype = DType::f32;
  double scale = 0;     // 0: 1/sqrt(K)
  uint64_t seed = 1;

  int64_t sequences() const { return seqlens.empty() ? B : static_cast<int64_t>(seqlens.size()); }
  int64_t tokens() const;  // B * T, or the sum of seqlens
  std::string name() const;  // e.g. "B1T64H2HV2K32V32_gchannel_bchannel_wchannel"
};

Gdn2Inputs gdn2_random_inputs(const Gdn2RandomSpec& spec);
Gdn2Options gdn2_random_options(const Gdn2RandomSpec& spec);
// Cotangents d_o [B, T, HV, V] and dht [N, HV, K, V] (F32) for loss = Σ o⊙d_o + Σ ht⊙dht.
std::pair<Tensor, Tensor> gdn2_random_cotangents(const Gdn2RandomSpec& spec, uint64_t seed);

}  // namespace gdn2
