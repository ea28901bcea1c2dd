// The shared state behind gdn2::Tokenizer: pipeline components, id tables and the JSON parts kept for saving.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "gdn2/tokenizer.h"
#include "tokenizer/added_tokens.h"
#include "tokenizer/bpe_model.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/pretokenizer.h"

namespace gdn2::tokenizer_detail {

enum class DecoderKind { none, byte_level };

// Largest id + 1 a tokenizer may have (bounds the id tables a hostile file could make us allocate).
inline constexpr int64_t kMaxVocab = int64_t{1} << 24;

struct TokenizerImpl {
  std::string label;  // where it came from, for messages

  Normalizer normalizer;
  PreTokenizer pre_tokenizer;
  BpeModel model;
  DecoderKind decoder = DecoderKind::byte_level;

  std::vector<AddedToken> added;  // as listed in the file
  std::unordered_map<std::string, int32_t> added_by_content;  // content -> id
  AddedTokenMatcher raw_matcher;         // added tokens with normalized == false, on the raw text
  AddedTokenMatcher normalized_matcher;  // the others (contents normalized), on normalized text

  // Per id (size vocab_size): the token string, the bytes it decodes to, its kind.
  enum : uint8_t { kNone = 0, kVocab = 1, kAdded = 2, kSpecial = 3 };
  std::vector<std::string> id_token;
  std::vector<std::string> id_bytes;
  std::vector<uint8_t> id_kind;

  // The file's components, re-emitted by save() as they were read.
  nlohmann::json normalizer_json, pre_tokenizer_json, post_processor_json, decoder_json;

  // Fills the id tables, matchers and byte tables from model + added (after both are set). Throws FormatError.
  void finish();

  std::vector<int32_t> encode(std::string_view text) const;
  std::string decode(const std::vector<int32_t>& ids, bool skip_special) const;
  std::string to_json_text() const;
  void check_id(int32_t id, const char* what) const;
};

}  // namespace gdn2::tokenizer_detail

namespace gdn2::tokenizer_detail {

// Builds a tokenizer from a parsed tokenizer.json. Throws FormatError naming `label` and the problem.
std::shared_ptr<TokenizerImpl> load_tokenizer(const nlohmann::json& root, const std::string& label);

}  // namespace gdn2::tokenizer_detail
