// A small hand-made byte-level BPE tokenizer.json (NFC normalizer, GPT-2 pre-tokenizer, added tokens with every
// flag) for tests that need exact, readable ids. Ids: 0..255 the bytes in byte order, 256..267 the merges' tokens,
// 268..273 the added tokens.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "tokenizer/byte_unicode.h"

namespace gdn2_test {

inline nlohmann::json small_tokenizer() {
  using nlohmann::json;
  json vocab = json::object();
  for (int b = 0; b < 256; ++b) vocab[gdn2::tokenizer_detail::byte_char_utf8(static_cast<unsigned char>(b))] = b;
  const char* merges[][2] = {{"Ġ", "t"}, {"h", "e"}, {"Ġt", "he"}, {"l", "l"}, {"e", "ll"}, {"h", "ell"},
                             {"hell", "o"}, {"Ġ", "w"}, {"o", "r"}, {"Ġw", "or"}, {"Ġwor", "l"}, {"Ġworl", "d"}};
  json mlist = json::array();
  int id = 256;
  for (const auto& m : merges) {
    vocab[std::string(m[0]) + m[1]] = id++;  // 256 Ġt, 257 he, 258 Ġthe, 259 ll, 260 ell, 261 hell, 262 hello, ...
    mlist.push_back(std::string(m[0]) + " " + m[1]);
  }
  auto added = [](int i, const char* content, bool special, bool normalized, bool lstrip, bool rstrip, bool single) {
    return json{{"id", i},         {"content", content}, {"special", special}, {"normalized", normalized},
                {"lstrip", lstrip}, {"rstrip", rstrip},   {"single_word", single}};
  };
  json tokens = json::array({
      added(268, "<|endoftext|>", true, false, false, false, false),
      added(269, "<|im_end|>", true, false, false, false, false),
      added(270, "<mask>", true, false, true, true, false),       // lstrip + rstrip
      added(271, "[SW]", false, false, false, false, true),       // single_word
      added(272, "\xc3\x89" "cole", false, true, false, false, false),  // "École", matched after NFC
      added(273, "<|endoftext|>x", false, false, false, false, false),  // longer: leftmost-longest wins
  });
  return json{{"version", "1.0"},
              {"added_tokens", tokens},
              {"normalizer", {{"type", "NFC"}}},
              {"pre_tokenizer",
               {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}}},
              {"post_processor", nullptr},
              {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}}},
              {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", mlist}}}};
}

// Qwen2/Qwen3's pre_tokenizer as their tokenizer.json files write it.
inline std::string qwen_pre_tokenizer_json() {
  return R"({"type":"Sequence","pretokenizers":[{"type":"Split","pattern":{"Regex":"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},"behavior":"Isolated","invert":false},{"type":"ByteLevel","add_prefix_space":false,"trim_offsets":false,"use_regex":false}]})";
}

}  // namespace gdn2_test
