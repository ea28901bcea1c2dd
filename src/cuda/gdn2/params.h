// The plain parameter block of the CUDA GDN-2 kernels: raw device pointers, element strides, dtypes, gate forms.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace gdn2::cuda {

enum class ElemType : int32_t { f32 = 0, f16 = 1, bf16 = 2 };
enum class Gate : int32_t { channel = 0, head = 1, absent = 2 };

// One input of [tokens, heads, dim] (channel) or [tokens, heads] (head) with explicit element strides.
struct InputView {
  const void* ptr = nullptr;
  ElemType type = ElemType::f32;
  int64_t stride_token = 0, stride_head = 0;  // elements
  int32_t heads = 0;                          // heads of this input (H or HV)
  Gate form = Gate::channel;
  bool sigmoid = false;  // b, w: the tensor holds logits, load_gate applies the sigmoid (token-recurrent kernel only)
};

// The tensor-core chunk path's tables and workspace (all device memory; null W: the CUDA-core path). Chunks of 64
// tokens never cross a sequence; chunk c covers tokens [chunk_tok0[c], chunk_tok0[c] + chunk_len[c]) and sequence n
// owns chunks [seq_chunk0[n], seq_chunk0[n+1]). Per (chunk c, value head hv), index c·HV + hv, bf16 unless noted:
//   W = A(b⊙k⊙Γ) [64, kmax],  qg = s·q⊙Γ [64, kmax],  kgT = (k⊙Γ_last/Γ)^T [kmax, 64],  U = A(w⊙v) [64, vpad],
//   P = tril(s·(q⊙Γ)(k/Γ)^T) [64, 64],  gamma = Γ_last [kmax] fp32;  A = (I + T)^-1.
// kmax is K rounded up to 64 or 128 and vpad is V rounded up to 64; rows past a chunk's length are zeros.
// The state pass runs over segments: runs of consecutive chunks of one sequence, segment s covering chunks
// [seg_chunk0[s], seg_chunk0[s+1]) of sequence seg_seq[s], sequence n owning segments [seq_seg0[n], seq_seg0[n+1]).
// Without context parallelism a segment is a whole sequence. With it (seg_state set) long sequences are cut into
// segments that run side by side: each segment but a sequence's last first runs from a zero state with K extra
// columns that start as the identity and see U = 0, giving its zero-state end state and its transition
// [S0 | M] (fp32 [segs, HV, kmax, vpad + kmax]); a scan forms every segment's entry state S_{s+1} = M_s S_s + S0_s
// (seg_h0, fp32 [segs, HV, kmax, vpad]); then every segment runs from its entry state.
struct ChunkWork {
  const int64_t* chunk_tok0 = nullptr;
  const int64_t* chunk_len = nullptr;
  const int64_t* seq_chunk0 = nullptr;
  const int64_t* seg_chunk0 = nullptr;
  const int64_t* seg_seq = nullptr;
  const int64_t* seq_seg0 = nullptr;
  int32_t chunks = 0, kmax = 0, vpad = 0, segs = 0;
  void *W = nullptr, *qg = nullptr, *kgT = nullptr, *U = nullptr, *P = nullptr;
  void* A = nullptr;  // A = (I + T)^-1 [64, 64] bf16 per (chunk, value head), written only when set (the backward)
  float* gamma = nullptr;
  float* seg_state = nullptr;  // null: no context parallelism
  float* seg_h0 = nullptr;
};

struct Gdn2Params {
  int32_t N = 0, H = 0, HV = 0, K = 0, V = 0;
  const int64_t* seq_offsets = nullptr;  // device, [N + 1] flat token offsets; null: sequence n is [n·T, (n+1)·T)
  int64_t T = 0;
  InputView q, k, v, g, b, w;
  // In-kernel decay gate: when a_log is set, g holds f and the kernel forms g = -exp(A_log[h]) softplus(f + dt_bias).
  const float* a_log = nullptr;   // [gate heads]
  const float* dt_bias = nullptr; // [gate heads * K] (or [gate heads] for per-head gates); may be null
  // State: h0 (may be null: zeros) and ht (may be null: not written), [N, HV, K, V]; fp32 or bf16.
  const void* h0 = nullptr;
  void* ht = nullptr;
  ElemType state_type = ElemType::f32;
  // Optional fp32 [chunks, HV, K, V]: the state entering every chunk of h_chunk_tokens tokens (64; the CUDA-core
  // path also takes 32, for the backward); chunk.seq_chunk0 numbers them.
  float* h_chunks = nullptr;
  int32_t h_chunk_tokens = 64;
  // Output o [tokens, HV, V] contiguous.
  void* o = nullptr;
  ElemType o_type = ElemType::f32;
  float scale = 1.f;
  bool l2norm = false;
  // Every channel-form input has a 16-byte aligned base, head and token strides that are multiples of 8 elements, and
  // K, V multiples of 8: the chunk path may load 8 channels at once.
  bool vec8 = false;
  ChunkWork chunk;
  cudaStream_t stream = nullptr;
};

// The chunk backward (chunk_bwd.cu), fp32 on CUDA cores over chunks of 32 tokens: chunk c covers tokens
// [chunk_tok0[c], chunk_tok0[c] + chunk_len[c]), sequence n owns chunks [seq_chunk0[n], seq_chunk0[n+1]).
struct Gdn2BwdParams {
  Gdn2Params f;                          // the forward's inputs; f.h_chunks holds h below for the recompute
  const void* d_o = nullptr;             // [tokens, HV, V]
  ElemType d_o_type = ElemType::f32;
  const float* dht = nullptr;            // [N, HV, K, V] or null
  float* coef = nullptr;                 // [chunks, HV, chunk_coef_floats(kmax, coef_u_cols)]: per-chunk coefficients
  int32_t coef_u_cols = 0;               // U = (I + T)^-1 (w⊙v) in coef too, over this many (vpad) columns, or none
  float* tp = nullptr;                   // [chunks, HV, 2, 32, 32]: each chunk's T and P, from the coefficient kernel
                                         // to the gradient kernel (which then skips forming the pair scores)
  // States every 64 tokens from the tensor-core forward (h64 [chunks64, HV, K, V]; first32[c] the 32-token chunk that
  // starts 64-token chunk c, len64[c] its length): the states pass then fills h_sub (the memory of h) from them and
  // coef (which needs coef_u_cols = vpad).
  const float* h64 = nullptr;
  const int64_t* first32 = nullptr;
  const int64_t* len64 = nullptr;
  int32_t chunks64 = 0;
  float* h_sub = nullptr;
  const float* h = nullptr;              // [chunks, HV, K, V]: the state entering each chunk
  float* dh = nullptr;                   // [chunks, HV, K, V]: the gradient wrt the state leaving each chunk
  float* dh0 = nullptr;                  // [N, HV, K, V] or null
  float *gq = nullptr, *gk = nullptr, *gg = nullptr, *gb = nullptr;  // [tokens, HV, K], per value head
  float *gv = nullptr, *gw = nullptr;                                // [tokens, HV, V]
  const int64_t* chunk_tok0 = nullptr;
  const int64_t* chunk_len = nullptr;
  const int64_t* seq_chunk0 = nullptr;
  int32_t chunks = 0;
  // The state-gradient pass runs over segments of consecutive chunks as ChunkWork's state pass does (params.h above),
  // in reverse: with seg_state set, every segment but a sequence's first first runs from a zero gradient with kmax
  // identity columns (dO = 0), giving [dS0 | M] (fp32 [segs, HV, kmax, vpad + kmax]); a reverse scan forms the
  // gradient entering each segment from its right (seg_dS, fp32 [segs, HV, kmax, vpad]); then all segments run.
  const int64_t* seg_chunk0 = nullptr;  // [segs + 1]
  const int64_t* seg_seq = nullptr;     // [segs]
  const int64_t* seq_seg0 = nullptr;    // [N + 1]
  int32_t segs = 0, vpad = 0;
  float* seg_state = nullptr;           // null: no context parallelism
  float* seg_dS = nullptr;
};

// Where the tensor-core backward writes an input's final gradient [tokens, HV, dim]: an F32 buffer, or a tensor in the
// input's dtype (Gdn2Options::grads_like_inputs).
struct GradOut {
  void* ptr = nullptr;
  ElemType type = ElemType::f32;
};

// The tensor-core chunk backward (chunk_bwd64.cu) for bf16/fp16 inputs, over the forward's chunks of 64 tokens. f is
// the recomputed forward's parameter block: its chunk tables, segments and workspace (W, qg, kgT, U, P, gamma and A of
// every chunk). The state-gradient pass runs over the forward's segments; with context parallelism it takes the
// forward's seg_state for its transitions [dS0 | M] and seg_h0 for the gradient entering each segment from its right.
struct Gdn2Bwd64Params {
  Gdn2Params f;
  const void* d_o = nullptr;             // [tokens, HV, V]
  ElemType d_o_type = ElemType::f32;
  const float* dht = nullptr;            // [N, HV, K, V] or null
  const float* h = nullptr;              // [chunks, HV, K, V]: the state entering each chunk
  // bf16 [chunks, HV, K, V]: the gradient wrt the state leaving each chunk, as the gradient kernel's products take it
  // (the state-gradient pass keeps its running sum in fp32)
  void* dh = nullptr;
  float* dh0 = nullptr;                  // [N, HV, K, V] or null
  float* dpt = nullptr;                  // [chunks, HV, 2, 64, 64]: s·dP (j <= i) and dT (j < i) of each chunk
  float* dgl = nullptr;                  // [chunks, HV, kmax]: the gradient wrt Γ_last through the state decay
  // [tokens, HV, K] per value head: the gradient kernel leaves d(q⊙Γ), dKt and d(b⊙k⊙Γ) in gq, gk and gb, the pair
  // kernel turns them into the gradients wrt q, k and b in oq, ok and ob (which may be gq, gk and gb) and writes the
  // gradient wrt g to gg.
  float *gq = nullptr, *gk = nullptr, *gg = nullptr, *gb = nullptr;
  GradOut oq, ok, ob;
  GradOut ov, ow;  // [tokens, HV, V], from the gradient kernel; ow.ptr null without w
};

}  // namespace gdn2::cuda
