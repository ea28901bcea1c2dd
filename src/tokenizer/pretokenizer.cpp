// Split delimiter behaviours and the ByteLevel step, following HF's NormalizedString::split and ByteLevel.
#include "tokenizer/pretokenizer.h"

#include <algorithm>

namespace gdn2::tokenizer_detail {

namespace {

struct Marked {
  Span span;
  bool flag;  // is_match before the behaviour is applied; "remove" after
};

void find_literal(std::string_view text, const std::string& lit, std::vector<Span>& out) {
  size_t pos = 0;
  while ((pos = text.find(lit, pos)) != std::string_view::npos) {
    out.emplace_back(pos, pos + lit.size());
    pos += lit.size();
  }
}

}  // namespace

void split_pieces(const SplitStep& step, std::string_view text, std::vector<Span>& out) {
  out.clear();
  if (text.empty()) return;
  std::vector<Span> found;
  if (step.regex) {
    step.regex->find_all(text, found);
  } else {
    find_literal(text, step.literal, found);
  }
  std::vector<Marked> m;
  m.reserve(found.size() * 2 + 1);
  size_t prev = 0;
  for (const Span& s : found) {
    if (prev != s.first) m.push_back({{prev, s.first}, false});
    m.push_back({s, true});
    prev = s.second;
  }
  if (prev != text.size()) m.push_back({{prev, text.size()}, false});
  if (step.invert)
    for (Marked& x : m) x.flag = !x.flag;

  std::vector<Marked> r;
  r.reserve(m.size());
  const std::vector<Marked>* result = &r;
  bool previous_match = false;
  switch (step.behavior) {
    case SplitBehavior::isolated:
      for (const Marked& x : m) r.push_back({x.span, false});
      break;
    case SplitBehavior::removed:
      result = &m;  // the matches carry flag = true: they are dropped below
      break;
    case SplitBehavior::contiguous:
      for (const Marked& x : m) {
        if (x.flag == previous_match && !r.empty()) {
          r.back().span.second = x.span.second;
        } else {
          r.push_back({x.span, false});
        }
        previous_match = x.flag;
      }
      break;
    case SplitBehavior::merged_with_previous:
      for (const Marked& x : m) {
        if (x.flag && !previous_match && !r.empty()) {
          r.back().span.second = x.span.second;
        } else {
          r.push_back({x.span, false});
        }
        previous_match = x.flag;
      }
      break;
    case SplitBehavior::merged_with_next:
      for (size_t k = m.size(); k-- > 0;) {
        const Marked& x = m[k];
        if (x.flag && !previous_match && !r.empty()) {
          r.back().span.first = x.span.first;
        } else {
          r.push_back({x.span, false});
        }
        previous_match = x.flag;
      }
      std::reverse(r.begin(), r.end());
      break;
  }
  for (const Marked& x : *result)
    if (!x.flag && x.span.first != x.span.second) out.push_back(x.span);
}

void PreTokenizer::run(std::string_view text, PieceSink sink) const {
  if (!text.empty()) run_from(0, text, sink);
}

void PreTokenizer::run_from(size_t step, std::string_view text, PieceSink sink) const {
  if (step < splits.size()) {
    std::vector<Span> pieces;
    split_pieces(splits[step], text, pieces);
    for (const Span& s : pieces) run_from(step + 1, text.substr(s.first, s.second - s.first), sink);
    return;
  }
  std::string prefixed;
  if (byte_level && add_prefix_space && text.front() != ' ') {
    prefixed.reserve(text.size() + 1);
    prefixed += ' ';
    prefixed.append(text);
    text = prefixed;
  }
  if (byte_level && byte_level_regex) {
    SplitStep gpt2{byte_level_regex, {}, SplitBehavior::isolated, false};
    std::vector<Span> pieces;
    split_pieces(gpt2, text, pieces);
    for (const Span& s : pieces) sink(text.substr(s.first, s.second - s.first));
    return;
  }
  sink(text);
}

}  // namespace gdn2::tokenizer_detail
