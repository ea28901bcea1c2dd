// Byte-level BPE tokenizer compatible with Hugging Face `tokenizers` (GPT-2 / Qwen family), and BPE training.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace gdn2 {

namespace tokenizer_detail {
struct TokenizerImpl;
}

// A loaded tokenizer. Immutable after construction: every const method is safe to call from many threads at once.
// Copies are cheap (they share the tables).
//
// Encoding follows HF tokenizers step by step: added tokens are cut out of the raw text (those with
// normalized=false), the rest is normalized and cut again (normalized=true), pre-tokenized, and each piece is
// BPE-merged (cached per piece). Regexes are Oniguruma patterns run by PCRE2 with Unicode properties; NFC is
// utf8proc's. Character classes follow the Unicode tables of those libraries (Debian 12: PCRE2 10.42, utf8proc 2.8),
// which can differ from HF's for characters assigned in the newest Unicode versions.
//
// What a tokenizer.json may contain (anything else raises FormatError naming the file and the field):
//  - model: type "BPE" (or no type with vocab + merges) with `vocab` {token: id} and `merges` as "a b" strings or
//    [a, b] pairs; dropout null, byte_fallback false, continuing_subword_prefix / end_of_word_suffix null or "",
//    unk_token null or a vocab token, ignore_merges true/false. Ids lie in [0, 2^24) and are unique.
//  - normalizer: null, NFC, NFD, NFKC, NFKD, or a Sequence of these.
//  - pre_tokenizer: null, ByteLevel (add_prefix_space, use_regex), Split (Regex or String pattern; behavior
//    Isolated, Removed, MergedWithPrevious, MergedWithNext or Contiguous; invert), or a Sequence of these in which
//    ByteLevel, if present, comes last.
//  - decoder: null (tokens joined by spaces, as HF does) or ByteLevel.
//  - post_processor: ignored (encode never adds template tokens: it is HF's encode(text, add_special_tokens=False)).
//  - added_tokens: [{id, content, special, normalized, lstrip, rstrip, single_word}], each with the id HF gives it on
//    load: the vocab's id if the content is a vocab token, else the next id after the vocab and the earlier added
//    tokens (a file that says otherwise is refused: HF would silently renumber it).
class Tokenizer {
 public:
  // Loads a Hugging Face tokenizer.json. Throws IoError if the file cannot be read, FormatError (naming the file
  // and the problem) if it is malformed or uses a component listed above as unsupported.
  static Tokenizer from_file(const std::string& tokenizer_json);
  // The same from JSON text; `label` names the source in error messages.
  static Tokenizer from_json(const std::string& json_text, const std::string& label = "<memory>");

  // Token ids of `text` (UTF-8; throws ValueError if it is not valid UTF-8). Added tokens found in the text are
  // matched as HF does (leftmost-longest, honouring lstrip/rstrip/single_word/normalized), special or not.
  // Equal to HF's `tokenizer.encode(text, add_special_tokens=False).ids`.
  std::vector<int32_t> encode(std::string_view text) const;
  // encode() of each text, in parallel over the texts (OpenMP).
  std::vector<std::vector<int32_t>> encode_batch(const std::vector<std::string>& texts) const;

  // Text of `ids` as HF's decode(ids, skip_special_tokens): token bytes concatenated, then invalid UTF-8 replaced by
  // U+FFFD per maximal subpart. Throws ValueError on an id that is no token.
  std::string decode(const std::vector<int32_t>& ids, bool skip_special = false) const;
  // The raw bytes one token contributes to decode() (before UTF-8 repair): for streaming, concatenate these and
  // emit only complete UTF-8 characters. Throws ValueError on an id that is no token.
  std::string token_bytes(int32_t id) const;

  // The size of the id space: 1 + the largest id of the vocab and the added tokens.
  int32_t vocab_size() const;
  // The id of a token given in vocab form ("Ġthe") or an added token's content ("<|im_end|>").
  std::optional<int32_t> token_to_id(std::string_view token) const;
  // The token string of an id (vocab form or added-token content); nullopt if no token has that id.
  std::optional<std::string> id_to_token(int32_t id) const;
  // The end-of-sequence id: the first special added token among <|endoftext|>, <|im_end|>, <|end_of_text|>,
  // <|eot_id|>, </s>, <eos>, <|eos|>.
  std::optional<int32_t> eos_id() const;
  // True for special added tokens (those decode(..., skip_special=true) drops).
  bool is_special(int32_t id) const;

  // Writes this tokenizer as a tokenizer.json that HF `tokenizers` loads and that encodes identically; atomic
  // (gdn2/atomic_file.h). Throws IoError if it cannot be written.
  void save(const std::string& tokenizer_json) const;
  // The same JSON as text.
  std::string to_json() const;

  explicit Tokenizer(std::shared_ptr<const tokenizer_detail::TokenizerImpl> impl);

 private:
  std::shared_ptr<const tokenizer_detail::TokenizerImpl> impl_;
};

// Trains a byte-level BPE tokenizer (GPT-2 style: GPT-2 pre-tokenizer regex, ByteLevel decoder, no normalizer).
// Contract:
//  - `special_tokens` get ids 0..k-1 (in order; duplicates and empty strings are refused with ValueError) and are
//    added tokens (special, not normalized); occurrences in `texts` are cut out before counting, never merged across.
//  - the 256 byte tokens follow, in byte order; then one token per merge, in merge order.
//  - each merge joins the adjacent pair with the highest count over all words (count = occurrences x word
//    frequency); ties go to the smallest (left id, right id). Training stops at `vocab_size` tokens or when no pair
//    occurs at least twice, so the result can be smaller than asked.
//  - vocab_size must be at least k + 256 (ValueError otherwise) and at most 2^24.
//  - texts that are not valid UTF-8 raise ValueError. Word counting runs in parallel over the texts.
Tokenizer tokenizer_train_bpe(const std::vector<std::string>& texts, int32_t vocab_size,
                              const std::vector<std::string>& special_tokens);

}  // namespace gdn2
