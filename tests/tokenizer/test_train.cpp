// BPE training: deterministic, special tokens first, merges by count; a trained tokenizer survives save + load and
// encodes every text losslessly.
#include <gtest/gtest.h>

#include "../core/temp_dir.h"
#include "gdn2/error.h"
#include "small_tokenizer.h"
#include "tokenizer_test_util.h"

namespace {

std::vector<std::string> corpus() {
  std::vector<std::string> texts;
  const char* lines[] = {
      "The quick brown fox jumps over the lazy dog. The dog sleeps.",
      "def train(model, data):\n    for x in data:\n        model.step(x)\n",
      "Hello world! Hello there, world. It's the world's best hello.",
      "数据 数据 数据 模型 模型 训练 训练 训练",
      "naïve café résumé naïve café 🙂🙂 🙂",
      "<|endoftext|>the end<|endoftext|>",
  };
  for (int rep = 0; rep < 30; ++rep)
    for (const char* l : lines) texts.push_back(std::string(l) + " " + std::to_string(rep % 7));
  return texts;
}

TEST(TokenizerTrain, LayoutAndDeterminism) {
  const auto texts = corpus();
  const gdn2::Tokenizer a = gdn2::tokenizer_train_bpe(texts, 380, {"<|endoftext|>", "<pad>"});
  const gdn2::Tokenizer b = gdn2::tokenizer_train_bpe(texts, 380, {"<|endoftext|>", "<pad>"});
  EXPECT_EQ(a.to_json(), b.to_json());
  EXPECT_EQ(a.vocab_size(), 380);
  EXPECT_EQ(a.token_to_id("<|endoftext|>"), 0);
  EXPECT_EQ(a.token_to_id("<pad>"), 1);
  EXPECT_TRUE(a.is_special(0));
  EXPECT_EQ(a.eos_id(), 0);
  EXPECT_EQ(a.token_to_id("!"), 2 + '!');
  EXPECT_EQ(a.token_to_id("\xc4\xa0"), 2 + ' ');  // "Ġ"
  for (const std::string& t : texts) {
    const auto ids = a.encode(t);
    EXPECT_EQ(a.decode(ids), t);
    EXPECT_LT(ids.size(), t.size());
  }
  EXPECT_EQ(a.encode("<|endoftext|>"), (std::vector<int32_t>{0}));
}

TEST(TokenizerTrain, MostFrequentPairFirstTiesToSmallestIds) {
  // Pieces "xy", " xy", " zw", " zw": (x,y), (Ġ,z) and (z,w) occur twice each; Ġ (byte 32) has the smallest id.
  const gdn2::Tokenizer t = gdn2::tokenizer_train_bpe({"xy xy zw zw"}, 259, {});
  EXPECT_EQ(t.id_to_token(256), "\xc4\xa0z");  // "Ġz"
  EXPECT_EQ(t.id_to_token(257), "xy");          // (x,y) = (120,121) before (Ġz,w) = (256,119), both twice
  EXPECT_EQ(t.id_to_token(258), "\xc4\xa0zw");
}

TEST(TokenizerTrain, SaveLoadRoundTrip) {
  const auto texts = corpus();
  const gdn2::Tokenizer t = gdn2::tokenizer_train_bpe(texts, 330, {"<|endoftext|>"});
  gdn2_test::TempDir dir;
  const std::string path = dir.file("tokenizer.json");
  t.save(path);
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"tokenizer.json"});
  const gdn2::Tokenizer u = gdn2::Tokenizer::from_file(path);
  EXPECT_EQ(u.vocab_size(), t.vocab_size());
  EXPECT_EQ(u.to_json(), t.to_json());
  std::vector<std::string> probes = texts;
  probes.push_back("unseen words: zebra quantum 量子 🦓 \t\n\r\n  end");
  probes.push_back("");
  for (const std::string& p : probes) EXPECT_EQ(u.encode(p), t.encode(p)) << p;
  // A tokenizer with Qwen's components (NFC, Split regex + ByteLevel, added tokens with every flag) survives
  // save + load too.
  nlohmann::json j = gdn2_test::small_tokenizer();
  j["pre_tokenizer"] = nlohmann::json::parse(gdn2_test::qwen_pre_tokenizer_json());
  const gdn2::Tokenizer real = gdn2::Tokenizer::from_json(j.dump());
  const std::string p2 = dir.file("real.json");
  real.save(p2);
  const gdn2::Tokenizer r = gdn2::Tokenizer::from_file(p2);
  EXPECT_EQ(r.vocab_size(), real.vocab_size());
  EXPECT_EQ(r.to_json(), real.to_json());
  probes.push_back("<|endoftext|>x <mask> [SW] E\xcc\x81" "cole<|im_end|>");
  for (const std::string& p : probes) EXPECT_EQ(r.encode(p), real.encode(p)) << p;
}

TEST(TokenizerTrain, StopsWhenNoPairRepeats) {
  const gdn2::Tokenizer t = gdn2::tokenizer_train_bpe({"abab"}, 1000, {});
  EXPECT_EQ(t.vocab_size(), 257);  // "ab" occurs twice; then "abab" would be the only pair, once
  EXPECT_EQ(t.encode("abab"), (std::vector<int32_t>{256, 256}));
  const gdn2::Tokenizer e = gdn2::tokenizer_train_bpe({}, 300, {"<s>"});
  EXPECT_EQ(e.vocab_size(), 257);
}

TEST(TokenizerTrain, BadArguments) {
  EXPECT_THROW(gdn2::tokenizer_train_bpe({"x"}, 100, {}), gdn2::ValueError);
  EXPECT_THROW(gdn2::tokenizer_train_bpe({"x"}, 256, {"<s>"}), gdn2::ValueError);
  EXPECT_THROW(gdn2::tokenizer_train_bpe({"x"}, 300, {"<s>", "<s>"}), gdn2::ValueError);
  EXPECT_THROW(gdn2::tokenizer_train_bpe({"x"}, 300, {""}), gdn2::ValueError);
  EXPECT_THROW(gdn2::tokenizer_train_bpe({"x"}, 300, {"!"}), gdn2::ValueError);
  EXPECT_THROW(gdn2::tokenizer_train_bpe({"ok", "\xc3("}, 300, {}), gdn2::ValueError);
}

}  // namespace
