// cuDNN's fused attention (cudnn-frontend SDPA graphs) as a path of the CUDA attention ops (attention_fwd.cu,
// attention_bwd.cu), for what training runs: BF16 or F16 self-attention (Tq = Tk) with the causal mask, no window, head
// dim a multiple of 8 up to 128, in calls whose shape repeats (AttentionOptions::repeated_shape: a plan is built per
// shape at its first use and kept). On by default where the build has it (it runs the H100's attention 3-4x faster
// than gdn2's own kernels: bench/results/e2e_h100.md); GDN2_CUDNN_ATTENTION=0 sends everything to gdn2's kernels.
#pragma once

#include "cuda/attention_params.h"

namespace gdn2::cuda {

// Whether the build has the path; whether it is on for the process, and turning it on or off (it starts on unless
// GDN2_CUDNN_ATTENTION=0).
bool cudnn_attention_built();
bool cudnn_attention_on();
void cudnn_attention_set(bool on);

// o and lse (F32 [B, Hq, Tq], natural-log log-sum-exp of the scaled scores, as gdn2's kernels write it) of a; false,
// with nothing written, when the path is off, the problem is not one it takes, or cuDNN has no plan for it.
bool cudnn_attention_forward(const AttnParams& a, void* o, float* lse);
// dq, dk, dv from a.q, a.k, a.v, a.o, a.d_o and a.lse (the forward's); false as above.
bool cudnn_attention_backward(const AttnParams& a, void* dq, void* dk, void* dv);

}  // namespace gdn2::cuda
