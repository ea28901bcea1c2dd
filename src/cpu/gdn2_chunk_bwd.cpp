// Chunkwise GDN-2 backward on the CPU: per (sequence, value head), the chunk-start states (recomputed, or the
// forward's stored h), then the chunks in reverse carrying dS.
#include <vector>

#include "cpu/gdn2.h"
#include "cpu/gdn2_chunk.h"

namespace gdn2::cpu {

namespace {

template <class Real>
Gdn2Grads chunk_bwd(const Gdn2Problem& p, const Gdn2Inputs& in, const Tensor& d_o, const Tensor& dht, const Tensor& h) {
  const int64_t K = p.K, V = p.V, C = p.chunk_size, tasks = p.N * p.HV, KV = K * V;
  Gdn2GradSinks<Real> sinks(p, in);
  Tensor dh0 = Tensor::zeros({p.N, p.HV, K, V}, dtype_of<Real>());
#pragma omp parallel
  {
    ChunkKernel<Real> kernel(C, K, V, static_cast<Real>(p.scale));
    TokenRows<Real> x;
    std::vector<Real> states, dS(static_cast<size_t>(KV)), dO(static_cast<size_t>(C * V));
    std::vector<Real> gq(C * K), gk(C * K), gv(C * V), gg(C * K), gb(C * K), gw(C * V);
#pragma omp for schedule(dynamic, 1)
    for (int64_t task = 0; task < tasks; ++task) {
      const int64_t n = task / p.HV, hv = task % p.HV, len = p.seq_len[n];
      const int64_t chunks = (len + C - 1) / C;
      // Chunk-start states: states[c] is the state before chunk c.
      states.resize(static_cast<size_t>((chunks + 1) * KV));
      if (h.defined()) {
        const int64_t first = p.chunk0(n);
        for (int64_t c = 0; c < chunks; ++c)
          load_rows(h, p.HV, KV, first + c, 1, hv, states.data() + c * KV);
      } else {
        load_state(in.h0, p, n, hv, states.data());
      }
      for (int64_t c = 0; c < chunks && !h.defined(); ++c) {
        const int64_t L = std::min(C, len - c * C);
        x.load(p, in, p.seq_start[n] + c * C, L, hv);
        kernel.prepare(x, L);
        std::copy(states.begin() + c * KV, states.begin() + (c + 1) * KV, states.begin() + (c + 1) * KV);
        kernel.forward(states.data() + (c + 1) * KV, nullptr);
      }
      if (dht.defined())
        load_rows(dht, p.N * p.HV, KV, 0, 1, n * p.HV + hv, dS.data());
      else
        std::fill(dS.begin(), dS.end(), Real(0));
      for (int64_t c = chunks - 1; c >= 0; --c) {
        const int64_t L = std::min(C, len - c * C), tok0 = p.seq_start[n] + c * C;
        x.load(p, in, tok0, L, hv);
        kernel.prepare(x, L);
        load_rows(d_o, p.HV, V, tok0, L, hv, dO.data());
        kernel.backward(states.data() + c * KV, dO.data(), dS.data(), gq.data(), gk.data(), gv.data(), gg.data(),
                        gb.data(), gw.data());
        x.l2norm_bwd(p, gq.data(), gk.data());
        sinks.store(hv, tok0, L, gq.data(), gk.data(), gv.data(), gg.data(), gb.data(), gw.data());
      }
      store_rows(dh0, p.N * p.HV, KV, 0, 1, n * p.HV + hv, dS.data());
    }
  }
  Gdn2Grads r = sinks.finish();
  if (p.has_h0) r.dh0 = dh0;
  return r;
}

}  // namespace

Gdn2Grads gdn2_chunk_bwd(const Gdn2Problem& p, const Gdn2Inputs& in, const Tensor& d_o, const Tensor& dht,
                         const Tensor& h, DType compute) {
  return compute == DType::f64 ? chunk_bwd<double>(p, in, d_o, dht, h) : chunk_bwd<float>(p, in, d_o, dht, h);
}

}  // namespace gdn2::cpu
