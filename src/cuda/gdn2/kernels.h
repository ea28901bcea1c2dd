// Launchers of the CUDA GDN-2 kernels (host side; the parameter block says everything a kernel needs).
#pragma once

#include "cuda/gdn2/params.h"

namespace gdn2::cuda {

// Token-recurrent forward over each sequence's tokens (decode: one token; verify: a few). h0 may alias ht.
void launch_recurrent(const Gdn2Params& p);
// Chunkwise forward (chunk 32), one block per (sequence, value head, 64-column slice of V).
void launch_chunk_fwd(const Gdn2Params& p);

}  // namespace gdn2::cuda
