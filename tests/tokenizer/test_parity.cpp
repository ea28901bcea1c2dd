// Parity with HF tokenizers: the ids of >= 10,000 varied strings under the real GPT-2 and Qwen3 tokenizer.json
// files (made by make_parity.py) must match exactly, and decode must give HF's text back.
#include <gtest/gtest.h>

#include <cstdio>

#include "gdn2/safetensors.h"
#include "tokenizer_test_util.h"

namespace {

struct Blob {
  gdn2::Tensor bytes, offsets;
  std::string at(int64_t i) const {
    const auto* o = offsets.data<int64_t>();
    return std::string(reinterpret_cast<const char*>(bytes.data<uint8_t>()) + o[i], static_cast<size_t>(o[i + 1] - o[i]));
  }
  int64_t size() const { return offsets.numel() - 1; }
};

std::string printable(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out += static_cast<char>(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", c);
      out += buf;
    }
  }
  return out;
}

void check_parity(const gdn2::Tokenizer& tok, const std::string& name) {
  const auto file = gdn2::SafetensorsFile::open(gdn2_test::tokenizer_data("parity.safetensors"));
  const Blob text{file.get("text.bytes"), file.get("text.offsets")};
  const gdn2::Tensor ids = file.get(name + ".ids"), offs = file.get(name + ".offsets");
  const gdn2::Tensor dec_index = file.get(name + ".decoded_index");
  const Blob decoded{file.get(name + ".decoded.bytes"), file.get(name + ".decoded.offsets")};
  const int64_t n = text.size();
  ASSERT_GE(n, 10000);
  ASSERT_EQ(offs.numel(), n + 1);

  std::vector<std::string> strings(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) strings[i] = text.at(i);
  const std::vector<std::vector<int32_t>> got = tok.encode_batch(strings);

  std::vector<std::string> want_text(strings);
  for (int64_t k = 0; k < dec_index.numel(); ++k) want_text[dec_index.data<int64_t>()[k]] = decoded.at(k);

  int64_t id_mismatch = 0, decode_mismatch = 0, total_ids = 0;
  const int32_t* all = ids.data<int32_t>();
  const int64_t* o = offs.data<int64_t>();
  for (int64_t i = 0; i < n; ++i) {
    const std::vector<int32_t> want(all + o[i], all + o[i + 1]);
    total_ids += static_cast<int64_t>(want.size());
    if (got[i] != want) {
      if (++id_mismatch <= 5) {
        std::string w, g;
        for (int32_t x : want) w += std::to_string(x) + " ";
        for (int32_t x : got[i]) g += std::to_string(x) + " ";
        ADD_FAILURE() << name << " string " << i << " \"" << printable(strings[i]) << "\"\n  HF:   " << w
                      << "\n  gdn2: " << g;
      }
    }
    const std::string back = tok.decode(got[i]);
    if (back != want_text[i] && ++decode_mismatch <= 5)
      ADD_FAILURE() << name << " decode of string " << i << ": \"" << printable(back) << "\" != \""
                    << printable(want_text[i]) << "\"";
    EXPECT_EQ(tok.encode(strings[i]), got[i]) << "encode != encode_batch for string " << i;
  }
  std::printf("[ parity ] %s: %lld strings, %lld ids, %lld id mismatches, %lld decode mismatches\n", name.c_str(),
              static_cast<long long>(n), static_cast<long long>(total_ids), static_cast<long long>(id_mismatch),
              static_cast<long long>(decode_mismatch));
  EXPECT_EQ(id_mismatch, 0);
  EXPECT_EQ(decode_mismatch, 0);
}

TEST(TokenizerParity, Gpt2MatchesHuggingFace) { check_parity(gdn2_test::gpt2_tokenizer(), "gpt2"); }

TEST(TokenizerParity, Qwen3MatchesHuggingFace) { check_parity(gdn2_test::qwen3_tokenizer(), "qwen3"); }

}  // namespace
