// Pre-tokenization as HF does it: Split steps (regex or literal, five delimiter behaviours) then ByteLevel.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/regex.h"

namespace gdn2::tokenizer_detail {

// GPT-2's pre-tokenizer regex (ByteLevel with use_regex).
inline constexpr const char* kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

enum class SplitBehavior { removed, isolated, merged_with_previous, merged_with_next, contiguous };

struct SplitStep {
  std::shared_ptr<const Regex> regex;  // null: `literal` is the pattern
  std::string literal;                 // non-empty when regex is null
  SplitBehavior behavior = SplitBehavior::isolated;
  bool invert = false;
};

// A non-owning callable taking each piece.
class PieceSink {
 public:
  template <class F>
  PieceSink(F& f) : obj_(&f), call_([](void* o, std::string_view s) { (*static_cast<F*>(o))(s); }) {}
  void operator()(std::string_view s) const { call_(obj_, s); }

 private:
  void* obj_;
  void (*call_)(void*, std::string_view);
};

struct PreTokenizer {
  std::vector<SplitStep> splits;  // applied in order
  bool byte_level = false;        // a ByteLevel step ends the sequence (the model then works on bytes)
  bool add_prefix_space = false;  // ByteLevel: prepend ' ' to each piece that does not start with one
  std::shared_ptr<const Regex> byte_level_regex;  // ByteLevel with use_regex: the GPT-2 pattern

  // Calls `sink` with every non-empty piece of `text` (valid UTF-8), in order. A piece may live in a temporary
  // buffer (add_prefix_space): use it before returning from the call.
  void run(std::string_view text, PieceSink sink) const;

 private:
  void run_from(size_t step, std::string_view text, PieceSink sink) const;
};

// The pieces `text` splits into under one Split step, as [begin, end) spans, empty ones dropped.
void split_pieces(const SplitStep& step, std::string_view text, std::vector<Span>& out);

}  // namespace gdn2::tokenizer_detail
