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
void launch_chunk_intra(const Gdn2Params& p);
void launch_chunk_state(const Gdn2Params& p);

// Streaming multiprocessors of the current device (cached).
int sm_count();

// Calls f(std::integral_constant<int, KMAX>{}) for the tensor-core chunk path's key width p.chunk.kmax (64 or 128).
template <class F>
void with_kmax(const Gdn2Params& p, F&& f) {
  if (p.chunk.kmax == 64)
    f(std::integral_constant<int, 64>{});
  else if (p.chunk.kmax == 128)
    f(std::integral_constant<int, 128>{});
  else
    GDN2_THROW(UnsupportedError, "CUDA GDN-2 tensor-core chunk path: kmax=", p.chunk.kmax, " is not 64 or 128");
}

}  // namespace gdn2::cuda
