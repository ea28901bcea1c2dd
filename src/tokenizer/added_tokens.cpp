// Leftmost-longest trie matching of added tokens and HF's find_matches rules around each match.
#include "tokenizer/added_tokens.h"

#include <algorithm>

#include "tokenizer/utf8.h"

namespace gdn2::tokenizer_detail {

void AddedTokenMatcher::build(const std::vector<std::string>& patterns, const std::vector<int32_t>& token_index) {
  nodes_.assign(1, Node{});
  edges_.clear();
  first_.fill(false);
  for (size_t k = 0; k < patterns.size(); ++k) {
    const std::string& p = patterns[k];
    if (p.empty()) continue;
    first_[static_cast<unsigned char>(p[0])] = true;
    int32_t node = 0;
    for (char c : p) {
      const uint64_t key = (static_cast<uint64_t>(node) << 8) | static_cast<unsigned char>(c);
      auto it = edges_.find(key);
      if (it == edges_.end()) {
        nodes_.push_back(Node{});
        it = edges_.emplace(key, static_cast<int32_t>(nodes_.size() - 1)).first;
      }
      node = it->second;
    }
    // The first pattern with given content wins (aho-corasick reports the lowest pattern id for equal matches).
    if (nodes_[node].token < 0) nodes_[node].token = token_index[k];
  }
}

int32_t AddedTokenMatcher::child(int32_t node, unsigned char b) const {
  auto it = edges_.find((static_cast<uint64_t>(node) << 8) | b);
  return it == edges_.end() ? -1 : it->second;
}

void AddedTokenMatcher::split(std::string_view text, const std::vector<AddedToken>& tokens,
                              std::vector<Segment>& out) const {
  out.clear();
  if (text.empty()) return;
  if (empty()) {
    out.push_back({0, text.size(), -1});
    return;
  }
  size_t start_offset = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    // Leftmost-longest: the first position where any pattern matches, the longest pattern there.
    size_t mstart = text.size(), mend = 0;
    int32_t mtok = -1;
    for (size_t i = pos; i < text.size(); ++i) {
      if (!first_[static_cast<unsigned char>(text[i])]) continue;
      int32_t node = 0;
      for (size_t j = i; j < text.size(); ++j) {
        node = child(node, static_cast<unsigned char>(text[j]));
        if (node < 0) break;
        if (nodes_[node].token >= 0) {
          mend = j + 1;
          mtok = nodes_[node].token;
        }
      }
      if (mtok >= 0) {
        mstart = i;
        break;
      }
    }
    if (mtok < 0) break;
    pos = mend;  // the matcher's own iteration continues after the raw match

    const AddedToken& tok = tokens[mtok];
    size_t start = mstart, stop = mend;
    if (tok.single_word) {
      size_t b;
      const bool start_space = start == 0 || !is_word_char(utf8_prev(text, start, b));
      size_t j = stop;
      const bool stop_space = stop == text.size() || !is_word_char(utf8_next(text, j));
      if (!start_space || !stop_space) continue;
    }
    if (tok.lstrip) {
      size_t newstart = start;
      while (newstart > 0) {
        size_t b;
        const char32_t c = utf8_prev(text, newstart, b);
        if (!is_white_space(c)) break;
        newstart = b;
      }
      start = std::max(newstart, start_offset);
    }
    if (tok.rstrip) {
      size_t j = stop;
      while (j < text.size()) {
        size_t k = j;
        if (!is_white_space(utf8_next(text, k))) break;
        j = k;
      }
      stop = j;
    }
    if (start_offset < start) out.push_back({start_offset, start, -1});
    out.push_back({start, stop, mtok});
    start_offset = stop;
  }
  if (start_offset < text.size()) out.push_back({start_offset, text.size(), -1});
}

}  // namespace gdn2::tokenizer_detail
