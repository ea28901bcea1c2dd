// Chunkwise GDN-2 forward on the CPU: one task per (sequence, value head), chunks in order within a task.
#include <vector>

#include "cpu/gdn2.h"
#include "cpu/gdn2_chunk.h"

namespace gdn2::cpu {

namespace {

template <class Real>
Gdn2Outputs chunk_fwd(const Gdn2Problem& p, const Gdn2Inputs& in) {
  const int64_t K = p.K, V = p.V, C = p.chunk_size, tasks = p.N * p.HV;
  Gdn2Outputs out;
  out.o = Tensor::zeros({p.B, p.T, p.HV, V}, dtype_of<Real>());
  out.ht = Tensor::zeros({p.N, p.HV, K, V}, dtype_of<Real>());
  if (p.chunk_states) out.h = Tensor::zeros({p.chunks(), p.HV, K, V}, dtype_of<Real>());
#pragma omp parallel
  {
    ChunkKernel<Real> kernel(C, K, V, static_cast<Real>(p.scale));
    TokenRows<Real> x;
    std::vector<Real> S(static_cast<size_t>(K * V)), O(static_cast<size_t>(C * V));
#pragma omp for schedule(dynamic, 1)
    for (int64_t task = 0; task < tasks; ++task) {
      const int64_t n = task / p.HV, hv = task % p.HV;
      load_state(in.h0, p, n, hv, S.data());
      const int64_t first_chunk = p.chunk_states ? p.chunk0(n) : 0;
      for (int64_t c0 = 0; c0 < p.seq_len[n]; c0 += C) {
        const int64_t L = std::min(C, p.seq_len[n] - c0), tok0 = p.seq_start[n] + c0;
        if (p.chunk_states) store_rows(out.h, p.HV, K * V, first_chunk + c0 / C, 1, hv, S.data());
        x.load(p, in, tok0, L, hv);
        kernel.prepare(x, L);
        kernel.forward(S.data(), O.data());
        store_rows(out.o, p.HV, V, tok0, L, hv, O.data());
      }
      store_rows(out.ht, p.N * p.HV, K * V, 0, 1, n * p.HV + hv, S.data());
    }
  }
  return out;
}

}  // namespace

Gdn2Outputs gdn2_chunk_fwd(const Gdn2Problem& p, const Gdn2Inputs& in, DType compute) {
  return compute == DType::f64 ? chunk_fwd<double>(p, in) : chunk_fwd<float>(p, in);
}

}  // namespace gdn2::cpu
