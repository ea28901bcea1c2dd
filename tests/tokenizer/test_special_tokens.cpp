// Added and special tokens as HF matches them (expected ids taken from HF tokenizers 0.23 on the same files),
// the empty string, eos_id, token_to_id, skip_special decoding.
#include <gtest/gtest.h>

#include "gdn2/error.h"
#include "small_tokenizer.h"
#include "tokenizer_test_util.h"

namespace {

using Ids = std::vector<int32_t>;

const gdn2::Tokenizer& small() {
  static const gdn2::Tokenizer t = gdn2::Tokenizer::from_json(gdn2_test::small_tokenizer().dump(), "small");
  return t;
}

TEST(TokenizerAddedTokens, EmptyStringGivesNoIds) {
  EXPECT_TRUE(small().encode("").empty());
  EXPECT_TRUE(gdn2_test::gpt2_tokenizer().encode("").empty());
  EXPECT_EQ(small().decode({}), "");
  EXPECT_TRUE(small().encode_batch({}).empty());
  EXPECT_EQ(small().encode_batch({"", "hello world"}), (std::vector<Ids>{{}, {257, 259, 111, 267}}));
}

TEST(TokenizerAddedTokens, MatchesLikeHuggingFace) {
  const gdn2::Tokenizer& t = small();
  EXPECT_EQ(t.encode("hello world"), (Ids{257, 259, 111, 267}));
  EXPECT_EQ(t.encode(" the hello"), (Ids{258, 32, 257, 259, 111}));
  EXPECT_EQ(t.encode("<|endoftext|>"), (Ids{268}));
  EXPECT_EQ(t.encode("a<|endoftext|>b"), (Ids{97, 268, 98}));
  EXPECT_EQ(t.encode("<|endoftext|>x<|endoftext|>"), (Ids{273, 268}));  // leftmost-longest
  EXPECT_EQ(t.encode("<|endoftext"), (Ids{60, 124, 101, 110, 100, 111, 102, 116, 101, 120, 116}));
  EXPECT_EQ(t.encode("<|im_end|> hello<|im_end|>"), (Ids{269, 32, 257, 259, 111, 269}));
  EXPECT_EQ(t.encode("hello\xc2\xa0world"), (Ids{257, 259, 111, 194, 160, 119, 264, 108, 100}));
}

TEST(TokenizerAddedTokens, LstripRstripSwallowWhitespace) {
  const gdn2::Tokenizer& t = small();
  EXPECT_EQ(t.encode("x <mask>  y"), (Ids{120, 270, 121}));
  EXPECT_EQ(t.encode("x\t<mask>\n y"), (Ids{120, 270, 121}));
  EXPECT_EQ(t.encode("<mask><mask>"), (Ids{270, 270}));
}

TEST(TokenizerAddedTokens, SingleWordOnlyBetweenNonWordCharacters) {
  const gdn2::Tokenizer& t = small();
  EXPECT_EQ(t.encode("[SW]"), (Ids{271}));
  EXPECT_EQ(t.encode("a [SW] b"), (Ids{97, 32, 271, 32, 98}));
  EXPECT_EQ(t.encode("-[SW]-"), (Ids{45, 271, 45}));
  EXPECT_EQ(t.encode("a[SW] b"), (Ids{97, 91, 83, 87, 93, 32, 98}));
  EXPECT_EQ(t.encode("[SW]b"), (Ids{91, 83, 87, 93, 98}));
  EXPECT_EQ(t.encode("_[SW]"), (Ids{95, 91, 83, 87, 93}));
  EXPECT_EQ(t.encode("\xc3\xa9[SW]"), (Ids{195, 169, 91, 83, 87, 93}));
}

TEST(TokenizerAddedTokens, NormalizedTokensMatchAfterNfc) {
  const gdn2::Tokenizer& t = small();
  EXPECT_EQ(t.encode("\xc3\x89" "cole"), (Ids{272}));
  EXPECT_EQ(t.encode("E\xcc\x81" "cole"), (Ids{272}));  // E + combining acute
  EXPECT_EQ(t.encode("l'\xc3\x89" "cole"), (Ids{108, 39, 272}));
}

TEST(TokenizerAddedTokens, DecodeSkipsOnlySpecialTokens) {
  const gdn2::Tokenizer& t = small();
  EXPECT_EQ(t.decode({269, 32, 257, 259, 111, 269}), "<|im_end|> hello<|im_end|>");
  EXPECT_EQ(t.decode({269, 32, 257, 259, 111, 269}, true), " hello");
  EXPECT_EQ(t.decode({273, 268}, true), "<|endoftext|>x");  // 273 is an added token, not special
  EXPECT_EQ(t.decode({270, 270}, true), "");
  // The ByteLevel decoder maps each character of an added token too: "École" becomes byte 0xC9 + "cole".
  EXPECT_EQ(t.decode({272}), "\xef\xbf\xbd" "cole");
  EXPECT_TRUE(t.is_special(268));
  EXPECT_FALSE(t.is_special(273));
  EXPECT_FALSE(t.is_special(97));
}

TEST(TokenizerAddedTokens, LookupsAndEos) {
  const gdn2::Tokenizer& t = small();
  EXPECT_EQ(t.vocab_size(), 274);
  EXPECT_EQ(t.token_to_id("<mask>"), 270);
  EXPECT_EQ(t.token_to_id("\xc4\xa0the"), 258);  // "Ġthe"
  EXPECT_EQ(t.token_to_id("nope"), std::nullopt);
  EXPECT_EQ(t.id_to_token(258), "\xc4\xa0the");
  EXPECT_EQ(t.id_to_token(274), std::nullopt);
  EXPECT_EQ(t.eos_id(), 268);
  const gdn2::Tokenizer& g = gdn2_test::gpt2_tokenizer();
  EXPECT_EQ(g.vocab_size(), 50257);
  EXPECT_EQ(g.eos_id(), 50256);
}

// The Qwen3 checks share one test (one load of the 5 MB file per test process).
TEST(TokenizerAddedTokens, Qwen3SpecialsChatAndLookups) {
  const gdn2::Tokenizer& q = gdn2_test::qwen3_tokenizer();
  EXPECT_TRUE(q.encode("").empty());
  EXPECT_EQ(q.vocab_size(), 151669);
  EXPECT_EQ(q.eos_id(), 151643);
  EXPECT_EQ(q.token_to_id("<|im_end|>"), 151645);
  EXPECT_EQ(q.token_to_id("</think>"), 151668);
  EXPECT_TRUE(q.is_special(151645));
  EXPECT_FALSE(q.is_special(151668));  // <think> / </think> are added, not special, in Qwen3

  const std::string chat = "<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\nHello";
  const Ids ids = q.encode(chat);
  // HF tokenizers: [151644, 872, 198, 13048, 0, 151645, 198, 151644, 77091, 198, 151667, 271, 151668, 271, 9707]
  EXPECT_EQ(ids, (Ids{151644, 872, 198, 13048, 0, 151645, 198, 151644, 77091, 198, 151667, 271, 151668, 271, 9707}));
  EXPECT_EQ(q.decode(ids), chat);
  EXPECT_EQ(q.decode(ids, true), "user\nHi!\nassistant\n<think>\n\n</think>\n\nHello");

  // A character split over byte tokens comes back whole from token_bytes.
  std::string all;
  for (int32_t id : q.encode("\xf0\x9f\x99\x82")) all += q.token_bytes(id);  // 🙂
  EXPECT_EQ(all, "\xf0\x9f\x99\x82");
  EXPECT_THROW(q.token_bytes(-1), gdn2::ValueError);
  EXPECT_THROW(q.token_bytes(q.vocab_size()), gdn2::ValueError);
  EXPECT_EQ(q.token_bytes(*q.token_to_id("<|im_end|>")), "<|im_end|>");
}

TEST(TokenizerModel, IgnoreMergesTakesWholeVocabWords) {
  nlohmann::json j = gdn2_test::small_tokenizer();
  j["model"]["ignore_merges"] = true;
  const gdn2::Tokenizer t = gdn2::Tokenizer::from_json(j.dump());
  // HF tokenizers 0.23 on the same file.
  EXPECT_EQ(t.encode("hello world"), (Ids{262, 267}));
  EXPECT_EQ(t.encode(" hello"), (Ids{32, 257, 259, 111}));
  EXPECT_EQ(t.encode("hellos"), (Ids{257, 259, 111, 115}));
  EXPECT_EQ(small().encode("hello"), (Ids{257, 259, 111}));  // without the flag the merges decide
}

TEST(TokenizerAddedTokens, BadInputIsAValueError) {
  const gdn2::Tokenizer& t = small();
  EXPECT_THROW(t.encode("\xff"), gdn2::ValueError);
  EXPECT_THROW(t.encode("ok\xc3"), gdn2::ValueError);
  EXPECT_THROW(t.encode_batch({"fine", "\xed\xa0\x80"}), gdn2::ValueError);  // a surrogate
  EXPECT_THROW(t.decode({274}), gdn2::ValueError);
  EXPECT_THROW(t.decode({-1}), gdn2::ValueError);
  EXPECT_THROW(t.token_bytes(1 << 30), gdn2::ValueError);
}

}  // namespace
