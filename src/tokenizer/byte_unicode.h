// GPT-2's reversible byte <-> Unicode character mapping that byte-level BPE vocabularies are written in.
#pragma once

#include <string>
#include <string_view>

namespace gdn2::tokenizer_detail {

// UTF-8 of the character that stands for byte b (printable Latin-1 bytes stand for themselves, the rest for
// U+0100 + n: space is "Ġ", newline "Ċ").
const std::string& byte_char_utf8(unsigned char b);
// The byte a character stands for, or -1 if the character is not one of the 256.
int char_byte(char32_t c);

// Every byte of `bytes` as its character.
std::string bytes_to_vocab_form(std::string_view bytes);
// The bytes a vocab-form token stands for; false (out unspecified) if a character is not one of the 256.
// `token` must be valid UTF-8.
bool vocab_form_to_bytes(std::string_view token, std::string& out);

}  // namespace gdn2::tokenizer_detail
