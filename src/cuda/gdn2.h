// CUDA backend of the GDN-2 ops (include/gdn2/ops/gdn2.h) for CUDA tensors; inputs validated into a Gdn2Problem.
#pragma once

#include <memory>

#include "ops/gdn2_problem.h"

namespace gdn2::cuda {

// Outputs are CUDA tensors: o in v's dtype when v is BF16/F16, else F32; ht F32.
Gdn2Outputs gdn2_chunk_fwd(const Gdn2Problem& p, const Gdn2Inputs& in);
Gdn2Outputs gdn2_recurrent(const Gdn2Problem& p, const Gdn2Inputs& in);
// Chunkwise backward (tensor cores for bf16/fp16 inputs, fp32 CUDA cores for fp32): F32 gradients shaped like the
// inputs, dg wrt the op's g (the in-op gate's chain rule is the caller's). h64: the forward's F32 states entering its
// 64-token chunks (chunk_states), or undefined to recompute them; work: with h64, the same forward's
// Gdn2Outputs::work (bf16/fp16 inputs), or undefined.
Gdn2Grads gdn2_chunk_bwd(const Gdn2Problem& p, const Gdn2Inputs& in, const Tensor& d_o, const Tensor& dht,
                         const Tensor& h64 = Tensor(), const Tensor& work = Tensor());
// In place on `state` (F32 or BF16 [N, HV, K, V]; at most kGdn2StepMaxTokens per sequence); returns o [B, T, HV, V].
Tensor gdn2_recurrent_step(const Gdn2Problem& p, const Gdn2Inputs& in, Tensor& state);

}  // namespace gdn2::cuda

namespace gdn2::cuda {

// A planned CUDA forward (see Gdn2Plan): parameter block and outputs made once, launches without allocation.
struct CudaPlan;
// Device workspace bytes of a planned launch (offsets, chunk tables and tiles); 0 when it needs none.
int64_t workspace_bytes(const Gdn2Problem& p, const Gdn2Inputs& in, bool chunk);
// workspace: null (the plan allocates its own) or a CUDA tensor of at least workspace_bytes, 256-byte aligned.
std::shared_ptr<CudaPlan> plan_make(const Gdn2Problem& p, const Gdn2Inputs& in, bool chunk, Tensor* state,
                                    Tensor* workspace, Gdn2Outputs& outputs);
void plan_run(CudaPlan& plan, void* stream);  // null: the plan's own stream
void plan_sync(CudaPlan& plan);

}  // namespace gdn2::cuda
