// CPU backend of the GDN-2 ops (include/gdn2/ops/gdn2.h); inputs are already validated into a Gdn2Problem.
#pragma once

#include "ops/gdn2_problem.h"

namespace gdn2::cpu {

Gdn2Outputs gdn2_recurrent_ref(const Gdn2Problem& p, const Gdn2Inputs& in);
Gdn2Grads gdn2_recurrent_ref_bwd(const Gdn2Problem& p, const Gdn2Inputs& in, const Tensor& d_o, const Tensor& dht);
Gdn2Outputs gdn2_recurrent(const Gdn2Problem& p, const Gdn2Inputs& in);
Tensor gdn2_recurrent_step(const Gdn2Problem& p, const Gdn2Inputs& in, Tensor& state);
Gdn2Outputs gdn2_chunk_fwd(const Gdn2Problem& p, const Gdn2Inputs& in, DType compute);
Gdn2Grads gdn2_chunk_bwd(const Gdn2Problem& p, const Gdn2Inputs& in, const Tensor& d_o, const Tensor& dht,
                         const Tensor& h, DType compute);

}  // namespace gdn2::cpu
