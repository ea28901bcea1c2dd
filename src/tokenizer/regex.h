// Pre-tokenizer regexes: Oniguruma patterns (what HF tokenizers compiles) run by PCRE2 (UTF + UCP, JIT).
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace gdn2::tokenizer_detail {

using Span = std::pair<size_t, size_t>;  // [begin, end) byte offsets

// Rewrites the escapes whose meaning differs between Oniguruma and PCRE2 into explicit classes: \s and \S
// (Oniguruma: Unicode White_Space; PCRE2 also counts U+180E), \w and \W (Oniguruma: letters, marks, decimal
// digits, connector punctuation), \h and \H (Oniguruma: hex digits), \uHHHH. Everything else passes unchanged.
std::string onig_to_pcre2(std::string_view pattern);

class Regex {
 public:
  // Compiles an Oniguruma-syntax pattern. Throws ValueError with PCRE2's message and offset if it does not compile.
  explicit Regex(const std::string& onig_pattern);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  const std::string& pattern() const { return pattern_; }

  // Appends the matches in `text` (valid UTF-8) to `out`, as HF's SysRegex::find_iter yields them: left to right,
  // non-overlapping, an empty match directly after the previous match skipped. Thread-safe.
  void find_all(std::string_view text, std::vector<Span>& out) const;

 private:
  std::string pattern_;
  void* code_ = nullptr;  // pcre2_code_8
  bool jit_ = false;
};

}  // namespace gdn2::tokenizer_detail
