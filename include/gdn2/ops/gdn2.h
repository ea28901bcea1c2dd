// The GDN-2 recurrence as ops: fp64 oracle, fp32 recurrent and decode step, chunkwise (WY) forward and backward.
//
//   S_t = (I - k_t (b_t ⊙ k_t)^T) Diag(exp g_t) S_{t-1} + k_t (w_t ⊙ v_t)^T,   o_t = S_t^T (scale · q_t)
//
// Shape contract (B batches, T tokens, H q/k heads, HV value heads with HV % H == 0, K key dim, V value dim;
// value head hv reads q/k head hv / (HV / H)):
//   q, k        [B, T, H, K]
//   v           [B, T, HV, V]
//   g_log       natural-log decay (<= 0): [B, T, Hg, K] channel-wise (GDN-2, KDA), or [B, T, Hg] one decay per
//               head (GDN); Hg is H or HV
//   b           erase gate: [B, T, Hb, K] channel-wise (GDN-2), or [B, T, Hb] scalar β (KDA, GDN), or
//               undefined meaning b = 0 (SSD-like); Hb is H or HV; b in [0, 2] with allow_neg_eigval
//   w           write gate: [B, T, HV, V] channel-wise, or [B, T, HV] scalar β, or undefined meaning w = 1
//   h0          initial state [N, HV, K, V], or undefined meaning zeros
//   cu_seqlens  packed variable-length batch: [N + 1] int32/int64 offsets (0 = c_0 <= ... <= c_N = T); needs B == 1.
//               Without it N = B.
//   A_log, dt_bias  optional in-op decay gate: when A_log [Hg] is defined, g_log holds the gate's pre-activation f
//               (same shape) and the op forms g = -exp(A_log[h]) softplus(f + dt_bias) (ops/decay_gate.h) itself, in
//               the kernel on CUDA; dt_bias is [Hg, K] / [Hg·K] for a channel gate, [Hg] for a per-head one, or undefined
// Outputs: o [B, T, HV, V]; ht [N, HV, K, V] (fp32 state; fp64 for the fp64 paths); with opt.chunk_states (chunk
// forward only) h [C, HV, K, V], the state entering each chunk of opt.chunk_size tokens, chunks numbered sequence by
// sequence (C = Σ_n ceil(len_n / chunk_size); the CUDA backend takes chunk_size 64).
// Gradients have the shape of the input they belong to; dh0 is defined when h0 is; with the in-op gate dg is the
// gradient of f and dA_log, ddt_bias are defined.
// Any float dtype is accepted for inputs; computation is in the op's stated precision.
#pragma once

#include <memory>
#include <string>

#include "gdn2/tensor.h"

namespace gdn2 {

struct Gdn2Inputs {
  Tensor q, k, v, g_log, b, w, h0, cu_seqlens;
  Tensor A_log, dt_bias;  // optional in-op decay gate (g_log then holds f)
};

struct Gdn2Options {
  double scale = 0.0;          // 0 means 1/sqrt(K)
  bool qk_l2norm = false;      // normalise q and k per head in the op: x * rsqrt(sum(x^2) + 1e-6)
  int chunk_size = 64;         // chunk ops: 16, 32 or 64
  DType compute = DType::f32;  // chunk ops: F32 (default) or F64
  bool chunk_states = false;   // chunk forward: also return h, the state entering every chunk
  // Chunk backward: dq, dk, dv, db, dw and (with the in-op gate) the gradient of f in their inputs' dtypes (what
  // autograd frameworks keep), instead of the op's precision; dg without the in-op gate, dh0, dA_log and ddt_bias stay
  // in it. With bf16/fp16 inputs on CUDA the kernels write them so (no F32 copy).
  bool grads_like_inputs = false;
  // b and w hold the logits of the erase and write gates: the forward ops apply the sigmoid themselves (the decode
  // step on CUDA as it loads them, with no kernel of its own). The backward ops refuse it, and so does a chunk plan.
  bool gates_logits = false;
};

struct Gdn2Outputs {
  Tensor o, ht;
  Tensor h;     // with Gdn2Options::chunk_states
  Tensor work;  // with chunk_states on CUDA for bf16/fp16 q, k, v: the forward's chunk workspace (opaque bytes)
};

struct Gdn2Grads {
  Tensor dq, dk, dv, dg, db, dw, dh0;
  Tensor dA_log, ddt_bias;  // with the in-op decay gate
};

// fp64 token-by-token oracle, written to be obviously right. Outputs are F64.
Gdn2Outputs gdn2_recurrent_ref(const Gdn2Inputs& in, const Gdn2Options& opt = {});
// fp64 backpropagation through time of loss = Σ o⊙d_o + Σ ht⊙dht (dht may be undefined). Outputs are F64.
Gdn2Grads gdn2_recurrent_ref_bwd(const Gdn2Inputs& in, const Gdn2Options& opt, const Tensor& d_o, const Tensor& dht);

// fp32 token-recurrent forward (the decode kernel applied to every token). Outputs F32.
Gdn2Outputs gdn2_recurrent(const Gdn2Inputs& in, const Gdn2Options& opt = {});
// Decode in place: one token per sequence, or a short run of at most kGdn2StepMaxTokens (speculative verify): inputs
// [B, T, ...] (or packed with cu_seqlens, every sequence at most that long; h0 ignored); `state` [N, HV, K, V] F32
// (BF16 allowed on CUDA) holds the state before the run on entry and after it on return. Returns o [B, T, HV, V]
// (F32 on the CPU; v's dtype for BF16/F16 v on CUDA).
inline constexpr int64_t kGdn2StepMaxTokens = 64;
Tensor gdn2_recurrent_step(const Gdn2Inputs& in, Tensor& state, const Gdn2Options& opt = {});

// Chunkwise (WY) forward, parallel over (sequence, value head). Outputs in opt.compute precision.
Gdn2Outputs gdn2_chunk_fwd(const Gdn2Inputs& in, const Gdn2Options& opt = {});
// Chunkwise backward of loss = Σ o⊙d_o + Σ ht⊙dht (dht may be undefined): dq, dk, dv, dg, db, dw, dh0.
// The backward needs the state entering every chunk. Recompute (h undefined, the default) runs the forward's state
// pass again and keeps nothing between the calls. Store: pass the forward's h (opt.chunk_states, same chunk_size),
// which saves that pass at the cost of keeping [chunks, HV, K, V] fp32 alive from forward to backward (4·K·V bytes
// per chunk and value head: 64 KB at K = V = 128, e.g. 268 MB for B4×T4096×HV16). On CUDA the stored h must be the
// F32 states of a chunk_size 64 forward (what the CUDA forward gives). With bf16/fp16 inputs on CUDA, pass also the
// forward's `work` (its chunk workspace: the WY factors, decayed q and k, U, the pair scores and (I + T)^-1, about
// 1.3 KB per token and value head at K = V = 128, 340 MB for B4×T4096×HV16) and the backward runs no forward kernel
// again; without it the forward's intra-chunk kernel runs again. The peak memory of forward + backward is the same
// either way (the backward's recompute allocates that workspace itself).
Gdn2Grads gdn2_chunk_bwd(const Gdn2Inputs& in, const Gdn2Options& opt, const Tensor& d_o, const Tensor& dht,
                         const Tensor& h = Tensor(), const Tensor& work = Tensor());

// A forward call planned once and launched many times with no allocation: outputs (and the kernel parameter block)
// are made by the constructor; run() launches asynchronously on the plan's own stream (CUDA) or runs (CPU);
// sync() waits. With `state`, the plan is a recurrent decode step updating that state in place (at most
// kGdn2StepMaxTokens per sequence, h0 ignored). The inputs' memory must stay alive and may be overwritten between runs (same shapes).
// Device scratch (sequence offsets, chunk tables, the chunk path's per-chunk tiles) lives in `workspace` when given:
// a contiguous CUDA tensor of at least workspace_bytes(...) bytes, 256-byte aligned, that the caller keeps alive and
// does not share between plans running at once; otherwise the plan allocates its own once.
enum class Gdn2Kernel { chunk, recurrent };
class Gdn2Plan {
 public:
  Gdn2Plan(const Gdn2Inputs& in, const Gdn2Options& opt, Gdn2Kernel kernel, Tensor* state = nullptr,
           Tensor* workspace = nullptr);
  // Bytes of device workspace a plan for these inputs needs (0 on the CPU).
  static int64_t workspace_bytes(const Gdn2Inputs& in, const Gdn2Options& opt, Gdn2Kernel kernel);
  ~Gdn2Plan();
  Gdn2Plan(const Gdn2Plan&) = delete;
  Gdn2Plan& operator=(const Gdn2Plan&) = delete;
  void run(void* stream = nullptr);  // CUDA: a cudaStream_t to launch on (null: the plan's own); CPU: ignored
  void sync();
  const Gdn2Outputs& outputs() const;  // o, and ht unless decoding in place
  Device device() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The same inputs on another device (cu_seqlens stays where it is), and tokens [t0, t0 + count) of every [B, T, ...]
// input as [B, count, ...] (h0 and cu_seqlens dropped: the decode step's inputs).
Gdn2Inputs gdn2_inputs_to(const Gdn2Inputs& in, Device device);
Gdn2Inputs gdn2_inputs_tokens(const Gdn2Inputs& in, int64_t t0, int64_t count);
inline Gdn2Inputs gdn2_inputs_token(const Gdn2Inputs& in, int64_t t) { return gdn2_inputs_tokens(in, t, 1); }

// The collapse mode the gate shapes select: "gdn2", "kda", "gdn", "ssd", or "g:<form> b:<form> w:<form>" for
// another mix (forms: channel, head, none).
std::string gdn2_gate_mode_name(const Gdn2Inputs& in);

}  // namespace gdn2
