// A validated GDN-2 call: sizes, sequences and gate forms, derived once from Gdn2Inputs for every backend.
#pragma once

#include <cstdint>
#include <vector>

#include "gdn2/ops/gdn2.h"

namespace gdn2 {

enum class GateForm : uint8_t { channel, head, absent };  // [.., heads, dim], [.., heads], undefined

struct GateSpec {
  GateForm form = GateForm::absent;
  int64_t heads = 0;  // H or HV
};

struct Gdn2Problem {
  int64_t B = 0, T = 0, H = 0, HV = 0, K = 0, V = 0;
  int64_t N = 0;                        // sequences
  std::vector<int64_t> seq_start;       // flat token index (batch * T + t) of each sequence's first token
  std::vector<int64_t> seq_len;
  GateSpec g, b, w;
  double scale = 0.0;                   // resolved (never 0)
  bool qk_l2norm = false;
  int chunk_size = 64;
  bool chunk_states = false;            // chunk forward: also the state entering every chunk
  bool grads_like_inputs = false;       // chunk backward: input gradients in their inputs' dtypes
  bool has_h0 = false;
  bool gate_in_op = false;  // A_log given: g_log holds f
  bool gates_logits = false;  // b and w hold logits (Gdn2Options::gates_logits)
  Device device = Device::cpu;  // where every input lives

  int64_t tokens() const { return B * T; }
  int64_t group() const { return HV / H; }
  int64_t qk_head(int64_t hv) const { return hv / group(); }
  int64_t gate_head(const GateSpec& s, int64_t hv) const { return s.heads == HV ? hv : hv / group(); }
  // Chunks of chunk_size tokens over all sequences, and the first chunk of sequence n.
  int64_t chunks() const { return chunk0(N); }
  int64_t chunk0(int64_t n) const {
    int64_t c = 0;
    for (int64_t m = 0; m < n; ++m) c += (seq_len[m] + chunk_size - 1) / chunk_size;
    return c;
  }
  int64_t max_seq_len() const {
    int64_t m = 0;
    for (int64_t l : seq_len) m = l > m ? l : m;
    return m;
  }
};

// Checks the shape contract of include/gdn2/ops/gdn2.h; throws ShapeError/DTypeError/ValueError naming `op`.
Gdn2Problem gdn2_problem(const Gdn2Inputs& in, const Gdn2Options& opt, const char* op);
// Checks an in-place decode state [N, HV, K, V] (F32; BF16 on CUDA) and the step's length limit.
void gdn2_check_step_state(const Gdn2Problem& p, const Tensor& state, const char* op);
// Checks d_o [B, T, HV, V] and dht [N, HV, K, V] (dht may be undefined).
void gdn2_check_cotangents(const Gdn2Problem& p, const Tensor& d_o, const Tensor& dht, const char* op);

}  // namespace gdn2
