// Added tokens (special or not) and how HF finds them in text: leftmost-longest matching with lstrip, rstrip and
// single_word.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace gdn2::tokenizer_detail {

struct AddedToken {
  int32_t id = -1;
  std::string content;
  bool special = false;
  bool normalized = true;
  bool lstrip = false;
  bool rstrip = false;
  bool single_word = false;
};

// One piece of a split text: a stretch of plain text (token < 0) or one added token's match.
struct Segment {
  size_t begin, end;
  int32_t token;  // index into the AddedToken list, or -1
};

// Leftmost-longest matcher over a set of byte strings (what aho-corasick's LeftmostLongest finds).
class AddedTokenMatcher {
 public:
  // patterns[k] is matched for token index token_index[k]. Empty patterns are ignored.
  void build(const std::vector<std::string>& patterns, const std::vector<int32_t>& token_index);
  bool empty() const { return nodes_.size() <= 1; }

  // HF's AddedVocabulary::find_matches: splits `text` into plain and added-token segments that cover it in order
  // (lstrip/rstrip widen a match over adjacent White_Space; single_word drops matches touching word characters).
  // Empty text gives no segments.
  void split(std::string_view text, const std::vector<AddedToken>& tokens, std::vector<Segment>& out) const;

 private:
  struct Node {
    int32_t token = -1;  // token index ending here, or -1
  };
  int32_t child(int32_t node, unsigned char b) const;
  std::vector<Node> nodes_;
  std::unordered_map<uint64_t, int32_t> edges_;  // (node << 8 | byte) -> node
  std::array<bool, 256> first_{};
};

}  // namespace gdn2::tokenizer_detail
