// The GPT-2 bytes_to_unicode table, both directions.
#include "tokenizer/byte_unicode.h"

#include <array>

#include "tokenizer/utf8.h"

namespace gdn2::tokenizer_detail {

namespace {

struct Tables {
  std::array<char32_t, 256> byte_to_cp{};
  std::array<std::string, 256> byte_to_utf8;
  std::array<int, 324> cp_to_byte{};  // every mapped code point is below 0x144
  Tables() {
    cp_to_byte.fill(-1);
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
      byte_to_cp[b] = printable ? static_cast<char32_t>(b) : static_cast<char32_t>(256 + n++);
      utf8_append(byte_to_utf8[b], byte_to_cp[b]);
      cp_to_byte[byte_to_cp[b]] = b;
    }
  }
};

const Tables& tables() {
  static const Tables t;
  return t;
}

}  // namespace

const std::string& byte_char_utf8(unsigned char b) { return tables().byte_to_utf8[b]; }

int char_byte(char32_t c) { return c < 324 ? tables().cp_to_byte[c] : -1; }

std::string bytes_to_vocab_form(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) out += byte_char_utf8(static_cast<unsigned char>(c));
  return out;
}

bool vocab_form_to_bytes(std::string_view token, std::string& out) {
  out.clear();
  size_t i = 0;
  while (i < token.size()) {
    const int b = char_byte(utf8_next(token, i));
    if (b < 0) return false;
    out.push_back(static_cast<char>(b));
  }
  return true;
}

}  // namespace gdn2::tokenizer_detail
