// Inference: prefill + recurrent decode (and chunked prefill) reproduce a full forward token for token.
#include <gtest/gtest.h>

#include "gdn2/generate.h"
#include "gdn2/model/lm.h"
#include "model_test_util.h"

namespace gdn2 {
namespace {

// Logits of position t of [1, T, V] logits.
Tensor row(const Tensor& logits, int64_t t) {
  const int64_t V = logits.size(2);
  const std::vector<double> v = logits.to_f64_vector();
  return Tensor::from_vector<double>({V}, std::vector<double>(v.begin() + t * V, v.begin() + (t + 1) * V));
}

void check_decode(const std::string& pattern, int64_t prefill, int64_t chunk) {
  ModelConfig c = test::tiny_config(pattern);
  c.hidden_size = 32;
  c.linear_key_head_dim = 16;
  c.linear_value_head_dim = 16;
  c.initializer_range = 0.05;
  LanguageModel m(c, DType::f32);
  m.init_random(11);
  const int64_t T = 21;
  const Tensor ids = test::random_ids(1, T, c.vocab_size, 12);
  const Tensor full = m.forward_logits(ids);
  InferenceState st = m.new_state(1);
  const int32_t* id = ids.data<int32_t>();
  // Prefill the first `prefill` tokens (in pieces of `chunk`), then decode one token at a time.
  int64_t t = 0;
  while (t < prefill) {
    const int64_t n = std::min(chunk, prefill - t);
    const Tensor part = Tensor::from_vector<int32_t>({1, n}, std::vector<int32_t>(id + t, id + t + n));
    const Tensor l = m.forward_logits(part, &st, false);
    for (int64_t i = 0; i < n; ++i)
      EXPECT_LE(rel_rms_error(row(l, i), row(full, t + i)), 1e-5) << pattern << " prefill position " << t + i;
    t += n;
  }
  for (; t < T; ++t) {
    const Tensor l = m.forward_logits(Tensor::from_vector<int32_t>({1, 1}, {id[t]}), &st, true);
    EXPECT_LE(rel_rms_error(row(l, 0), row(full, t)), 1e-5) << pattern << " decode position " << t;
  }
  EXPECT_EQ(st.length, T);
}

TEST(Decode, RecurrentDecodeEqualsFullForward) {
  check_decode("GKDSAW", 5, 5);
  check_decode("GGGA", 1, 1);
}

TEST(Decode, ChunkedPrefillEqualsFullForward) { check_decode("GKDSAW", 17, 4); }

TEST(Decode, LinearStateIsConstantMemory) {
  const ModelConfig c = test::tiny_config("GGSD");
  LanguageModel m(c, DType::f32);
  m.init_random(3);
  InferenceState st = m.new_state(1);
  m.forward_logits(test::random_ids(1, 10, c.vocab_size, 1), &st, true);
  const int64_t bytes = st.bytes();
  for (int i = 0; i < 30; ++i) m.forward_logits(Tensor::from_vector<int32_t>({1, 1}, {1}), &st, true);
  EXPECT_EQ(st.bytes(), bytes);
}

// A decode step's least traffic over slots: linear states and conv caches read and written, KV read up to the length.
TEST(Decode, SlotTrafficOfAStep) {
  const ModelConfig linear = test::tiny_config("GGSD");
  LanguageModel a(linear, DType::f32);
  const InferenceState sa = a.new_slots(3, 16);
  EXPECT_EQ(sa.decode_bytes(5), 2 * sa.bytes());  // no KV caches: the length does not matter
  const ModelConfig hybrid = test::tiny_config("GKDSAW");
  LanguageModel b(hybrid, DType::f32);
  const InferenceState sb = b.new_slots(3, 16);
  const int64_t both = sb.decode_bytes(0) / 2, kv = sb.bytes() - both;  // linear caches, KV caches
  EXPECT_GT(both, 0);
  EXPECT_GT(kv, 0);
  EXPECT_EQ(sb.decode_bytes(16), 2 * both + kv);
  EXPECT_EQ(sb.decode_bytes(8), 2 * both + kv / 2);
  EXPECT_EQ(sb.decode_bytes(100), sb.decode_bytes(16));  // at most the whole cache
}

TEST(Decode, SamplerModes) {
  std::mt19937_64 rng(1);
  const std::vector<float> logits{0.f, 5.f, 1.f, 4.9f};
  SamplingOptions greedy;
  greedy.temperature = 0;
  EXPECT_EQ(sample_token(logits.data(), 4, greedy, rng), 1);
  SamplingOptions topk;
  topk.top_k = 2;
  for (int i = 0; i < 50; ++i) {
    const int32_t t = sample_token(logits.data(), 4, topk, rng);
    EXPECT_TRUE(t == 1 || t == 3);
  }
  SamplingOptions topp;
  topp.top_p = 0.3;  // the top token alone has ~50% of the mass
  for (int i = 0; i < 20; ++i) EXPECT_EQ(sample_token(logits.data(), 4, topp, rng), 1);
  SamplingOptions bad;
  bad.temperature = -1;
  EXPECT_THROW(sample_token(logits.data(), 4, bad, rng), ValueError);
  const std::vector<float> nan{0.f, std::nanf("")};
  EXPECT_THROW(sample_token(nan.data(), 2, topk, rng), ValueError);
  // Same seed, same tokens.
  std::mt19937_64 a(5), b(5);
  SamplingOptions t1;
  for (int i = 0; i < 10; ++i) EXPECT_EQ(sample_token(logits.data(), 4, t1, a), sample_token(logits.data(), 4, t1, b));
}

}  // namespace
}  // namespace gdn2
