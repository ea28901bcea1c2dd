// Test helpers for the tokenizer: the committed real tokenizers (loaded once) and small JSON tokenizers.
#pragma once

#include <string>

#include "gdn2/tokenizer.h"

namespace gdn2_test {

inline std::string tokenizer_data(const std::string& name) { return std::string(GDN2_TEST_DATA) + "/tokenizers/" + name; }

// GPT-2 (tests/data/tokenizers/gpt2.json) and the Qwen3 layout over the Qwen vocabulary (qwen3.json, kept as
// qwen3.json.tar.xz and unpacked into the build tree by tests/CMakeLists.txt).
inline const gdn2::Tokenizer& gpt2_tokenizer() {
  static const gdn2::Tokenizer t = gdn2::Tokenizer::from_file(tokenizer_data("gpt2.json"));
  return t;
}
inline const gdn2::Tokenizer& qwen3_tokenizer() {
  static const gdn2::Tokenizer t = gdn2::Tokenizer::from_file(std::string(GDN2_TEST_UNPACKED) + "/tokenizers/qwen3.json");
  return t;
}

}  // namespace gdn2_test
