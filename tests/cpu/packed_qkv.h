// The gated attention layer's fused decode projection for the attention_decode_inputs tests (CPU and CUDA): rows of
// [Hq, 2, D] (q and its output gate side by side per head), then k [Hkv, D], then v [Hkv, D].
#pragma once

#include "gdn2/ops/dense.h"

namespace gdn2::test {

// q and gate [N, Hq, D], k and v [N, Hkv, D], one dtype and device: qkv [N, (2 Hq + 2 Hkv) D].
inline Tensor packed_qkv(const Tensor& q, const Tensor& gate, const Tensor& k, const Tensor& v) {
  const int64_t N = q.size(0), D = q.size(2);
  return concat_last({concat_last({q, gate}).reshape({N, 2 * q.size(1) * D}), k.reshape({N, k.size(1) * D}),
                      v.reshape({N, v.size(1) * D})});
}

}  // namespace gdn2::test
