// Per-chunk states of the chunk forward (Gdn2Options::chunk_states): h[chunk] is the oracle's state after the tokens
// before that chunk, chunks numbered sequence by sequence.
#include <gtest/gtest.h>

#include <utility>

#include "gdn2/ops/gdn2_random.h"

namespace gdn2 {
namespace {

// The [HV, K, V] state of sequence n after its first `tokens` tokens, from the fp64 oracle.
std::vector<double> oracle_state(const Gdn2Inputs& in, const Gdn2Options& opt, int64_t n, int64_t tokens) {
  const int64_t B = in.q.size(0);
  Gdn2Inputs prefix = gdn2_inputs_tokens(in, 0, tokens);
  prefix.h0 = in.h0;
  const std::vector<double> ht = gdn2_recurrent_ref(prefix, opt).ht.to_f64_vector();
  const size_t per = ht.size() / static_cast<size_t>(B);
  return {ht.begin() + static_cast<std::ptrdiff_t>(n * per), ht.begin() + static_cast<std::ptrdiff_t>((n + 1) * per)};
}

TEST(Gdn2ChunkStates, StatesAtChunkStartsEqualOracle) {
  for (int chunk : {16, 64}) {
    Gdn2RandomSpec spec;
    spec.B = 2, spec.T = 150, spec.H = 1, spec.HV = 2, spec.K = 16, spec.V = 8, spec.seed = 61;
    const Gdn2Inputs in = gdn2_random_inputs(spec);
    Gdn2Options opt = gdn2_random_options(spec);
    opt.chunk_size = chunk;
    opt.chunk_states = true;
    const Gdn2Outputs out = gdn2_chunk_fwd(in, opt);
    const int64_t per_seq = (spec.T + chunk - 1) / chunk;
    ASSERT_EQ(out.h.shape(), (Shape{spec.B * per_seq, spec.HV, spec.K, spec.V}));
    const std::vector<double> h = out.h.to_f64_vector();
    const size_t per = static_cast<size_t>(spec.HV * spec.K * spec.V);
    for (int64_t n = 0; n < spec.B; ++n)
      for (int64_t j = 0; j < per_seq; ++j) {
        const std::vector<double> want = oracle_state(in, opt, n, j * chunk);
        const std::vector<double> got(h.begin() + static_cast<std::ptrdiff_t>((n * per_seq + j) * per),
                                      h.begin() + static_cast<std::ptrdiff_t>((n * per_seq + j + 1) * per));
        EXPECT_LE(rel_rms_error(Tensor::from_vector({static_cast<int64_t>(per)}, got),
                                Tensor::from_vector({static_cast<int64_t>(per)}, want)),
                  1e-5)
            << "chunk " << chunk << " sequence " << n << " chunk " << j;
      }
    opt.chunk_states = false;
    EXPECT_FALSE(gdn2_chunk_fwd(in, opt).h.defined());
  }
}

// Packed sequences number their chunks one after another; an empty sequence has none.
TEST(Gdn2ChunkStates, PackedSequencesNumberChunksInOrder) {
  Gdn2RandomSpec spec;
  spec.seqlens = {70, 0, 1, 33}, spec.H = 1, spec.HV = 2, spec.K = 16, spec.V = 8, spec.seed = 62;
  const Gdn2Inputs in = gdn2_random_inputs(spec);
  Gdn2Options opt = gdn2_random_options(spec);
  opt.chunk_size = 32;
  opt.chunk_states = true;
  const Gdn2Outputs out = gdn2_chunk_fwd(in, opt);
  ASSERT_EQ(out.h.size(0), 3 + 0 + 1 + 2);
  const std::vector<double> h = out.h.to_f64_vector(), h0 = in.h0.to_f64_vector(), ht = out.ht.to_f64_vector();
  const size_t per = static_cast<size_t>(spec.HV * spec.K * spec.V);
  auto slice = [per](const std::vector<double>& x, int64_t i) {
    return std::vector<double>(x.begin() + static_cast<std::ptrdiff_t>(i * per),
                               x.begin() + static_cast<std::ptrdiff_t>((i + 1) * per));
  };
  EXPECT_EQ(slice(h, 0), slice(h0, 0));  // each sequence's first chunk starts from its h0
  EXPECT_EQ(slice(h, 3), slice(h0, 2));
  EXPECT_EQ(slice(h, 4), slice(h0, 3));
  // Later chunks: the oracle over the sequence's tokens so far. Sequence 0 starts at token 0, sequence 3 at 71.
  auto state_after = [&](int64_t tok0, int64_t n, int64_t tokens) {
    Gdn2Inputs seq = gdn2_inputs_tokens(in, tok0, tokens);
    seq.h0 = Tensor::from_vector({1, spec.HV, spec.K, spec.V}, slice(h0, n));
    return gdn2_recurrent_ref(seq, opt).ht;
  };
  auto at = [&](int64_t i) { return Tensor::from_vector({1, spec.HV, spec.K, spec.V}, slice(h, i)); };
  EXPECT_LE(rel_rms_error(at(1), state_after(0, 0, 32)), 1e-5);
  EXPECT_LE(rel_rms_error(at(2), state_after(0, 0, 64)), 1e-5);
  EXPECT_LE(rel_rms_error(at(5), state_after(71, 3, 32)), 1e-5);
}

// The backward on the forward's stored states gives the recomputing backward's gradients bitwise (both paths run
// the same chunk kernel in the same precision), packed and dense; a stored h of the wrong shape is refused.
TEST(Gdn2ChunkStates, BackwardOnStoredStatesEqualsRecompute) {
  Gdn2RandomSpec dense;
  dense.B = 2, dense.T = 100, dense.H = 1, dense.HV = 2, dense.K = 16, dense.V = 8, dense.seed = 63;
  Gdn2RandomSpec packed = dense;
  packed.seqlens = {40, 0, 1, 70}, packed.seed = 64;
  for (const Gdn2RandomSpec& spec : {dense, packed}) {
    const Gdn2Inputs in = gdn2_random_inputs(spec);
    Gdn2Options opt = gdn2_random_options(spec);
    opt.chunk_size = 32;
    opt.chunk_states = true;
    const Tensor h = gdn2_chunk_fwd(in, opt).h;
    const auto [d_o, dht] = gdn2_random_cotangents(spec, 5);
    const Gdn2Grads a = gdn2_chunk_bwd(in, opt, d_o, dht), b = gdn2_chunk_bwd(in, opt, d_o, dht, h);
    for (auto [x, y] : {std::pair{&a.dq, &b.dq}, {&a.dk, &b.dk}, {&a.dv, &b.dv}, {&a.dg, &b.dg}, {&a.db, &b.db},
                        {&a.dw, &b.dw}, {&a.dh0, &b.dh0}})
      EXPECT_EQ(x->to_f64_vector(), y->to_f64_vector()) << spec.name();
    const Tensor wrong = Tensor::zeros({h.size(0) + 1, spec.HV, spec.K, spec.V}, DType::f32);
    EXPECT_THROW(gdn2_chunk_bwd(in, opt, d_o, dht, wrong), ShapeError);
  }
}

}  // namespace
}  // namespace gdn2
