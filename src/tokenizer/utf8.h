// UTF-8 helpers for the tokenizer: validation, decoding, lossy repair as Rust's from_utf8_lossy, Unicode classes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace gdn2::tokenizer_detail {

inline constexpr size_t kValidUtf8 = static_cast<size_t>(-1);

// The offset of the first byte that starts an invalid UTF-8 sequence (overlong forms, surrogates and code points
// past U+10FFFF are invalid), or kValidUtf8.
size_t utf8_invalid_at(std::string_view s);

// Decodes the character at s[i] of a VALID UTF-8 string and advances i past it.
inline char32_t utf8_next(std::string_view s, size_t& i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) {
    ++i;
    return b0;
  }
  auto cont = [&](size_t k) { return static_cast<char32_t>(static_cast<unsigned char>(s[i + k]) & 0x3f); };
  char32_t cp;
  if (b0 < 0xe0) {
    cp = (static_cast<char32_t>(b0 & 0x1f) << 6) | cont(1);
    i += 2;
  } else if (b0 < 0xf0) {
    cp = (static_cast<char32_t>(b0 & 0x0f) << 12) | (cont(1) << 6) | cont(2);
    i += 3;
  } else {
    cp = (static_cast<char32_t>(b0 & 0x07) << 18) | (cont(1) << 12) | (cont(2) << 6) | cont(3);
    i += 4;
  }
  return cp;
}

// The character that ends at s[end) of a VALID UTF-8 string (end > 0); sets `begin` to its first byte.
char32_t utf8_prev(std::string_view s, size_t end, size_t& begin);

void utf8_append(std::string& out, char32_t cp);

// `bytes` with every invalid sequence replaced by U+FFFD, one per maximal subpart (Unicode's recommended practice,
// which is what Rust's String::from_utf8_lossy and so HF's decoders do).
std::string utf8_lossy(std::string_view bytes);

// Unicode White_Space (what Oniguruma's and Rust regex's \s match).
bool is_white_space(char32_t c);
// Rust regex's \w: Alphabetic, marks, decimal digits, connector punctuation, join controls (approximated through
// general categories: L*, Nl, M*, Nd, Pc, U+200C, U+200D).
bool is_word_char(char32_t c);

}  // namespace gdn2::tokenizer_detail
