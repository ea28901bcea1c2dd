// Small string helpers shared by the corpus cleaners: line splitting and trimming over string_view.
#pragma once

#include <string_view>
#include <vector>

namespace gdn2::data_detail {

// The lines of `text` without their '\n'; "a\n" gives {"a", ""}.
inline std::vector<std::string_view> split_lines(std::string_view text) {
  std::vector<std::string_view> lines;
  size_t start = 0;
  for (;;) {
    const size_t nl = text.find('\n', start);
    if (nl == std::string_view::npos) {
      lines.push_back(text.substr(start));
      return lines;
    }
    lines.push_back(text.substr(start, nl - start));
    start = nl + 1;
  }
}

inline std::string_view trim_left(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  return s;
}

inline std::string_view trim(std::string_view s) {
  s = trim_left(s);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Leading blanks (a tab counts as one column: reST sources here indent with spaces).
inline size_t indent_of(std::string_view line) { return line.size() - trim_left(line).size(); }

}  // namespace gdn2::data_detail
