// Launchers of the CUDA GDN-2 kernels (host side; the parameter block says everything a kernel needs).
#pragma once

#include <type_traits>

#include "cuda/common.cuh"
#include "cuda/gdn2/params.h"

namespace gdn2::cuda {

// Token-recurrent forward over each sequence's tokens (decode: one token; verify: a few). h0 may alias ht.
void launch_recurrent(const Gdn2Params& p);
// Chunkwise forward. With p.chunk set (bf16/fp16 inputs, K <= 128): the tensor-core path, launch_chunk_intra then
// launch_chunk_state. Otherwise the fp32 CUDA-core kernel (chunk 32, one block per sequence, value head and 64
// columns of V), exact to fp32 for fp32 inputs.
void launch_chunk_fwd(const Gdn2Params& p);
// The fp32 CUDA-core kernel alone (chunks of 32; per-chunk states every p.h_chunk_tokens; o may be null).
void launch_chunk_fwd_exact(const Gdn2Params& p);
void launch_chunk_intra(const Gdn2Params& p);
void launch_chunk_state(const Gdn2Params& p);

// Chunk backward for fp32 inputs (3xTF32 tensor-core products, chunks of 32), in two launches on one stream. States:
// every chunk's coefficients (bp.coef), with bp.h64 set the states entering the second half of every 64-token chunk
// (h_sub), then the reverse pass over chunks for the state gradients (dh, dh0); every chunk's T and P go to bp.tp.
// Grads: every chunk's input gradients per value head (gq .. gw) from bp.h (the forward's chunk states), bp.dh and
// bp.tp; bp.coef is not read.
void launch_chunk_bwd_states(const Gdn2BwdParams& bp);
void launch_chunk_bwd_grads(const Gdn2BwdParams& bp);
// Chunk backward for bf16/fp16 inputs on tensor cores (tf32, fp32 accumulation) over the forward's chunks of 64
// tokens, after the forward's intra kernel (with ChunkWork::A). States: the reverse pass over chunks for the state
// gradients (dh, dh0). Grads: chunk_grad64_kernel, then chunk_pair64_kernel; the gradients per value head.
void launch_chunk_bwd64_states(const Gdn2Bwd64Params& bp);
void launch_chunk_bwd64(const Gdn2Bwd64Params& bp);
// Floats of bp.coef per (chunk, value head): s q̂⊙Γ, W and Kt [32][kmax] each, P [32][32], γ [kmax], and U [32][u_cols].
constexpr int64_t chunk_coef_floats(int64_t kmax, int64_t u_cols = 0) {
  return 3 * 32 * kmax + 32 * 32 + kmax + 32 * u_cols;
}
// out[t, h, d] = Σ over the value heads of group h of buf[t, hv, d] (channel form; heads = H or HV), or also summed
// over d (head form: out [t, h]). Deterministic.
void launch_reduce_heads(const float* buf, int64_t tokens, int HV, int dim, int heads, bool channel, float* out,
                         cudaStream_t stream);

// Streaming multiprocessors of the current device (cached).
int sm_count();

// Calls f(std::integral_constant<int, KMAX>{}) for a key width kmax of 64 or 128 (the tensor-core path's
// p.chunk.kmax, or kmax_for(p.K) for the fp32 CUDA-core kernels).
template <class F>
void with_kmax(int kmax, F&& f) {
  if (kmax == 64)
    f(std::integral_constant<int, 64>{});
  else if (kmax == 128)
    f(std::integral_constant<int, 128>{});
  else
    GDN2_THROW(UnsupportedError, "CUDA GDN-2 chunk kernels: kmax=", kmax, " is not 64 or 128");
}

// K rounded up to the key width the chunk kernels compile for (64 or 128); K above 128 is unsupported.
inline int kmax_for(int K) {
  GDN2_CHECK(K <= 128, UnsupportedError, "CUDA GDN-2 chunk kernels: K=", K, " above 128");
  return K <= 64 ? 64 : 128;
}

}  // namespace gdn2::cuda
