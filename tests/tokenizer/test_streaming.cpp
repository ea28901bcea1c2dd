// token_bytes: the raw bytes of single tokens, which may split a UTF-8 character; concatenated they give decode().
#include <gtest/gtest.h>

#include "gdn2/error.h"
#include "tokenizer/utf8.h"
#include "tokenizer_test_util.h"

namespace {

// Emits only complete UTF-8 characters, holding back an unfinished tail, as a streaming decoder would.
class Utf8Stream {
 public:
  std::string push(const std::string& bytes) {
    pending_ += bytes;
    size_t keep = 0;  // bytes at the end that may start an unfinished character
    for (size_t k = 1; k <= 3 && k <= pending_.size(); ++k) {
      const auto c = static_cast<unsigned char>(pending_[pending_.size() - k]);
      if ((c & 0xc0) == 0x80) continue;
      const size_t need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
      if (need > k) keep = k;
      break;
    }
    std::string out = pending_.substr(0, pending_.size() - keep);
    pending_.erase(0, pending_.size() - keep);
    return out;
  }
  const std::string& pending() const { return pending_; }

 private:
  std::string pending_;
};

TEST(TokenizerStreaming, TokenBytesSplitCharacters) {
  const gdn2::Tokenizer& g = gdn2_test::gpt2_tokenizer();
  const std::string text = "emoji 🤷🏽‍♀️ and 𝐀 and 漢字 done";
  const auto ids = g.encode(text);
  std::string joined;
  bool saw_partial = false;
  for (int32_t id : ids) {
    const std::string b = g.token_bytes(id);
    joined += b;
    if (gdn2::tokenizer_detail::utf8_invalid_at(b) != gdn2::tokenizer_detail::kValidUtf8) {
      saw_partial = true;
      // decode() of the lone token repairs it with U+FFFD, as HF does.
      EXPECT_NE(g.decode({id}).find("\xef\xbf\xbd"), std::string::npos);
    }
  }
  EXPECT_TRUE(saw_partial) << "GPT-2 splits rare characters into byte tokens";
  EXPECT_EQ(joined, text);
  EXPECT_EQ(g.decode(ids), text);

  Utf8Stream stream;
  std::string streamed;
  for (int32_t id : ids) {
    const std::string out = stream.push(g.token_bytes(id));
    EXPECT_EQ(gdn2::tokenizer_detail::utf8_invalid_at(out), gdn2::tokenizer_detail::kValidUtf8);
    streamed += out;
  }
  EXPECT_EQ(stream.pending(), "");
  EXPECT_EQ(streamed, text);
}

TEST(TokenizerStreaming, LossyDecodeReplacesMaximalSubparts) {
  using gdn2::tokenizer_detail::utf8_lossy;
  EXPECT_EQ(utf8_lossy("a\xf0\x9f\x98"), "a\xef\xbf\xbd");                // truncated 4-byte sequence: one U+FFFD
  EXPECT_EQ(utf8_lossy("\xf0\x9f\x98\x80"), "\xf0\x9f\x98\x80");           // complete
  EXPECT_EQ(utf8_lossy("\x80\x80"), "\xef\xbf\xbd\xef\xbf\xbd");          // two stray continuation bytes
  EXPECT_EQ(utf8_lossy("\xe0\x80\x80"), "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");  // overlong: each byte
  EXPECT_EQ(utf8_lossy("\xed\xa0\x80"), "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");  // surrogate
  EXPECT_EQ(utf8_lossy("\xe2\x82x"), "\xef\xbf\xbdx");                     // E2 82 then ASCII
}

}  // namespace
