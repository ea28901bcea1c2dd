// Continuous batching: slot decode reproduces the full forward for sequences of different lengths; slots move
// without changing results; the batch decoder's tokens equal generate()'s for every sequence while others join and
// leave; greedy picks (argmax_rows); bad calls refused with nothing admitted; the inference benchmark's timings.
#include <gtest/gtest.h>

#include <map>

#include "gdn2/batch_decoder.h"
#include "gdn2/generate.h"
#include "gdn2/model/lm.h"
#include "gdn2/ops/dense.h"
#include "model_test_util.h"

namespace gdn2 {
namespace {

ModelConfig config() {
  ModelConfig c = test::tiny_config("GKDSAW");
  c.hidden_size = 32;
  c.linear_key_head_dim = 16;
  c.linear_value_head_dim = 16;
  c.initializer_range = 0.05;
  return c;
}

std::vector<int32_t> random_tokens(int64_t n, int64_t V, uint64_t seed) {
  const Tensor t = test::random_ids(1, n, V, seed);
  return std::vector<int32_t>(t.data<int32_t>(), t.data<int32_t>() + n);
}

// Last-position logits of a full forward over `seq`, as doubles.
std::vector<double> full_last(LanguageModel& m, const std::vector<int32_t>& seq) {
  const auto T = static_cast<int64_t>(seq.size());
  const std::vector<double> v = m.forward_logits(Tensor::from_vector<int32_t>({1, T}, seq)).to_f64_vector();
  const int64_t V = m.config().vocab_size;
  return std::vector<double>(v.end() - V, v.end());
}

double rel(const std::vector<double>& a, const std::vector<double>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) num += (a[i] - b[i]) * (a[i] - b[i]), den += b[i] * b[i];
  return std::sqrt(num / std::max(den, 1e-300));
}

void check_slots(DType dt, double tol) {
  const ModelConfig c = config();
  LanguageModel m(c, dt);
  m.init_random(3);
  const std::vector<int64_t> lens{7, 2, 13};  // different lengths, longer than the sliding window
  InferenceState slots = m.new_slots(4, 20);
  std::vector<std::vector<int32_t>> seqs;
  for (size_t i = 0; i < lens.size(); ++i) {
    seqs.push_back(random_tokens(lens[i], c.vocab_size, 10 + i));
    InferenceState st = m.new_state(1);
    m.forward_logits(Tensor::from_vector<int32_t>({1, lens[i]}, seqs[i]), &st, true);
    m.load_slot(slots, static_cast<int64_t>(i), st);
  }
  // Three decode steps of all three sequences at once.
  for (int step = 0; step < 3; ++step) {
    std::vector<int32_t> ids, pos, len;
    for (size_t i = 0; i < seqs.size(); ++i) {
      ids.push_back(static_cast<int32_t>((step * 7 + i * 5) % c.vocab_size));
      pos.push_back(static_cast<int32_t>(seqs[i].size()));
      len.push_back(static_cast<int32_t>(seqs[i].size() + 1));
      seqs[i].push_back(ids.back());
    }
    const auto N = static_cast<int64_t>(ids.size());
    const Tensor logits = m.decode_slots(Tensor::from_vector<int32_t>({N}, ids), Tensor::from_vector<int32_t>({N}, pos),
                                         Tensor::from_vector<int32_t>({N}, len), slots);
    ASSERT_EQ(logits.shape(), (Shape{N, c.vocab_size}));
    const std::vector<double> lv = logits.to_f64_vector();
    for (int64_t n = 0; n < N; ++n) {
      const std::vector<double> got(lv.begin() + n * c.vocab_size, lv.begin() + (n + 1) * c.vocab_size);
      EXPECT_LE(rel(got, full_last(m, seqs[static_cast<size_t>(n)])), tol)
          << dtype_name(dt) << " step " << step << " sequence " << n;
    }
  }
  // Slot 2 moved to slot 0 decodes as before.
  m.move_slot(slots, 2, 0);
  seqs[2].push_back(4);
  const Tensor logits = m.decode_slots(
      Tensor::from_vector<int32_t>({1}, {4}), Tensor::from_vector<int32_t>({1}, {static_cast<int32_t>(seqs[2].size() - 1)}),
      Tensor::from_vector<int32_t>({1}, {static_cast<int32_t>(seqs[2].size())}), slots);
  EXPECT_LE(rel(logits.to_f64_vector(), full_last(m, seqs[2])), tol) << "moved slot";
}

TEST(SlotDecode, MatchesFullForwardF64) { check_slots(DType::f64, 1e-10); }
TEST(SlotDecode, MatchesFullForwardF32) { check_slots(DType::f32, 1e-5); }

TEST(SlotDecode, BadCallsRefused) {
  LanguageModel m(config(), DType::f32);
  InferenceState slots = m.new_slots(2, 8);
  const Tensor one = Tensor::from_vector<int32_t>({1}, {1});
  EXPECT_THROW(m.decode_slots(Tensor::from_vector<int32_t>({3}, {1, 1, 1}), one, one, slots), ShapeError);
  EXPECT_THROW(m.decode_slots(one, Tensor::from_vector<int32_t>({1}, {8}), Tensor::from_vector<int32_t>({1}, {9}), slots),
               ValueError);  // past max_len
  InferenceState plain = m.new_state(1);
  EXPECT_THROW(m.decode_slots(one, Tensor::from_vector<int32_t>({1}, {0}), one, plain), ValueError);
  EXPECT_THROW(m.new_slots(0, 8), ValueError);
  EXPECT_THROW(m.move_slot(slots, 0, 2), ValueError);
}

TEST(BatchDecoder, TokensEqualGenerateWhileSequencesJoinAndLeave) {
  const ModelConfig c = config();
  LanguageModel m(c, DType::f64);
  m.init_random(5);
  BatchDecoderOptions o;
  o.capacity = 3;
  o.max_len = 32;
  o.prefill_chunk = 3;
  BatchDecoder dec(m, o);
  SamplingOptions greedy;
  greedy.temperature = 0;
  greedy.max_new_tokens = 6;
  SamplingOptions sampled;
  sampled.temperature = 0.8;
  sampled.top_k = 5;
  sampled.seed = 42;
  sampled.max_new_tokens = 4;

  std::map<int64_t, std::vector<int32_t>> prompts, got;
  std::map<int64_t, SamplingOptions> how;
  auto join = [&](const std::vector<std::vector<int32_t>>& ps, const SamplingOptions& so) {
    const std::vector<int64_t> ids = dec.join(ps, so);
    for (size_t i = 0; i < ids.size(); ++i) prompts[ids[i]] = ps[i], how[ids[i]] = so;
  };
  join({random_tokens(5, c.vocab_size, 1), random_tokens(9, c.vocab_size, 2)}, greedy);
  int steps = 0;
  std::vector<int64_t> finished;
  while (dec.active() > 0) {
    if (steps == 2) join({random_tokens(3, c.vocab_size, 3)}, sampled);  // joins mid-way
    if (steps == 3) {  // one slot free: nothing admitted
      EXPECT_THROW(dec.join({random_tokens(2, c.vocab_size, 4), random_tokens(2, c.vocab_size, 5)}, greedy), ValueError);
    }
    for (const DecodedToken& t : dec.step()) {
      got[t.seq].push_back(t.token);
      if (t.finished) finished.push_back(t.seq);
    }
    ASSERT_LT(++steps, 50);
  }
  EXPECT_EQ(finished.size(), 3u);
  for (const auto& [id, p] : prompts) {
    const GenerateResult ref = generate(m, p, how[id]);
    EXPECT_EQ(got[id], ref.tokens) << "sequence " << id;
  }
}

TEST(BatchDecoder, LeaveStopAndMaxLen) {
  const ModelConfig c = config();
  LanguageModel m(c, DType::f32);
  m.init_random(6);
  BatchDecoderOptions o;
  o.capacity = 2;
  o.max_len = 6;
  BatchDecoder dec(m, o);
  SamplingOptions greedy;
  greedy.temperature = 0;
  greedy.max_new_tokens = 100;
  const std::vector<int64_t> ids = dec.join({random_tokens(4, c.vocab_size, 7), random_tokens(2, c.vocab_size, 8)}, greedy);
  EXPECT_EQ(dec.active(), 2);
  EXPECT_GT(dec.state_bytes(), 0);
  dec.leave(ids[0]);
  EXPECT_THROW(dec.leave(ids[0]), ValueError);
  EXPECT_EQ(dec.active(), 1);
  // The other runs until its slot is full: 2 prompt tokens + 4 fed = 6 = max_len, 5 tokens out.
  int out = 0;
  bool finished = false;
  while (dec.active() > 0)
    for (const DecodedToken& t : dec.step()) {
      ++out;
      finished = t.finished;
    }
  EXPECT_EQ(out, 5);
  EXPECT_TRUE(finished);
  EXPECT_THROW(dec.join({{}}, greedy), ValueError);
  EXPECT_THROW(dec.join({random_tokens(7, c.vocab_size, 9)}, greedy), ValueError);  // longer than max_len
  EXPECT_THROW(dec.join({{0, static_cast<int32_t>(c.vocab_size)}}, greedy), ValueError);
  SamplingOptions none = greedy;
  none.max_new_tokens = 0;
  EXPECT_THROW(dec.join({{1}}, none), ValueError);
  EXPECT_EQ(dec.active(), 0);
  // A stop id ends a sequence at once.
  SamplingOptions stop = greedy;
  const std::vector<int32_t> p = random_tokens(3, c.vocab_size, 10);
  stop.stop_ids = {generate(m, p, greedy).tokens[0]};
  dec.join({p}, stop);
  const std::vector<DecodedToken> first = dec.step();
  ASSERT_EQ(first.size(), 1u);
  EXPECT_TRUE(first[0].finished);
  EXPECT_EQ(dec.active(), 0);
}

// The inference benchmark on the CPU: both prefills and the decode steps are timed, the rates follow from the
// times, the slots' memory and a step's least traffic are reported; bad counts refused.
TEST(InferThroughput, TimesBothPrefillsAndTheDecode) {
  const ModelConfig c = config();
  LanguageModel m(c, DType::f32);
  m.init_random(7);
  const InferThroughput r = infer_throughput(m, 2, 9, 3, 4);
  EXPECT_GT(r.prefill_cold_s, 0.0);
  EXPECT_GT(r.prefill_s, 0.0);
  EXPECT_NEAR(r.prefill_tokens_per_s * r.prefill_s, 2.0 * 9.0, 1e-6);
  EXPECT_GT(r.decode_ms_per_step, 0.0);
  EXPECT_NEAR(r.decode_tokens_per_s * r.decode_ms_per_step / 1e3, 2.0, 1e-6);
  EXPECT_GT(r.state_bytes, 0);
  EXPECT_GT(r.step_bytes, r.state_bytes / 2);
  EXPECT_TRUE(r.finite);
  EXPECT_FALSE(r.cuda_graphs);
  EXPECT_THROW(infer_throughput(m, 0, 9, 3), ValueError);
  EXPECT_THROW(infer_throughput(m, 2, 9, 1), ValueError);
  EXPECT_THROW(infer_throughput(m, 2, 0, 3), ValueError);
}

TEST(ArgmaxRows, FirstLargestAndNonFinite) {
  const Tensor x = Tensor::from_vector<float>({3, 4}, {1, 5, 5, 2, -1, -3, -0.5f, -2, 0, NAN, 1, 0});
  const Tensor a = argmax_rows(x);
  EXPECT_EQ(a.dtype(), DType::i32);
  EXPECT_EQ(a.data<int32_t>()[0], 1);
  EXPECT_EQ(a.data<int32_t>()[1], 2);
  EXPECT_EQ(a.data<int32_t>()[2], -1);
  EXPECT_THROW(argmax_rows(Tensor::zeros({4}, DType::f32)), ShapeError);
}

}  // namespace
}  // namespace gdn2
