// Minimal text cleaning: line endings, UTF-8 repair, control characters, blank lines, Gutenberg boilerplate.
#include <algorithm>
#include <cctype>
#include <string>
#include <vector>

#include "data/text_util.h"
#include "gdn2/data/corpus.h"

namespace gdn2 {

namespace {

using data_detail::split_lines;
using data_detail::trim_left;

// Length of the valid UTF-8 sequence at s[i], or 0 if it is not one.
size_t utf8_length(std::string_view s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[i + k]); };
  const auto cont = [&](size_t k) { return i + k < s.size() && (b(k) & 0xC0) == 0x80; };
  const unsigned char c = b(0);
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (!cont(1) || !cont(2)) return 0;
    if (c == 0xE0 && b(1) < 0xA0) return 0;  // overlong
    if (c == 0xED && b(1) > 0x9F) return 0;  // surrogate
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    if (c == 0xF0 && b(1) < 0x90) return 0;  // overlong
    if (c == 0xF4 && b(1) > 0x8F) return 0;  // above U+10FFFF
    return 4;
  }
  return 0;
}

// UTF-8 repair, line endings and control characters, in one pass.
std::string repair(std::string_view raw) {
  std::string out;
  out.reserve(raw.size());
  size_t i = raw.substr(0, 3) == "\xEF\xBB\xBF" ? 3 : 0;
  while (i < raw.size()) {
    const unsigned char c = static_cast<unsigned char>(raw[i]);
    const size_t n = utf8_length(raw, i);
    if (n == 0) {
      out += "\xEF\xBF\xBD";
      i += 1;
    } else if (n == 1) {
      if (c == '\r') {
        out += '\n';
        i += (i + 1 < raw.size() && raw[i + 1] == '\n') ? 2 : 1;
        continue;
      }
      if (c == '\n' || c == '\t' || (c >= 0x20 && c != 0x7F)) out += static_cast<char>(c);
      i += 1;
    } else {
      const bool c1_control = n == 2 && c == 0xC2 && static_cast<unsigned char>(raw[i + 1]) < 0xA0;
      if (!c1_control) out.append(raw.substr(i, n));
      i += n;
    }
  }
  return out;
}

std::string upper(std::string_view s) {
  std::string u(s);
  for (char& c : u) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return u;
}

bool gutenberg_start(std::string_view line) {
  const std::string u = upper(trim_left(line));
  return u.rfind("***", 0) == 0 && u.find("START OF") != std::string::npos &&
         u.find("PROJECT GUTENBERG") != std::string::npos;
}

bool gutenberg_end(std::string_view line) {
  const std::string u = upper(trim_left(line));
  if (u.rfind("***", 0) == 0)
    return u.find("END OF") != std::string::npos && u.find("PROJECT GUTENBERG") != std::string::npos;
  return u.rfind("END OF THE PROJECT GUTENBERG", 0) == 0 || u.rfind("END OF PROJECT GUTENBERG", 0) == 0;
}

}  // namespace

std::string normalize_text(std::string_view raw) {
  const std::string text = repair(raw);
  std::string out;
  out.reserve(text.size());
  bool pending_blank = false;
  for (std::string_view line : split_lines(text)) {
    while (!line.empty() && (line.back() == ' ' || line.back() == '\t')) line.remove_suffix(1);
    if (line.empty()) {
      pending_blank = !out.empty();
      continue;
    }
    if (!out.empty()) out += pending_blank ? "\n\n" : "\n";
    pending_blank = false;
    out.append(line);
  }
  return out;
}

std::string strip_gutenberg(std::string_view text) {
  const std::vector<std::string_view> lines = split_lines(text);
  size_t first = 0, last = lines.size();
  for (size_t i = 0; i < lines.size(); ++i)
    if (gutenberg_start(lines[i])) {
      first = i + 1;
      break;
    }
  for (size_t i = first; i < lines.size(); ++i)
    if (gutenberg_end(lines[i])) {
      last = i;
      break;
    }
  if (first == 0 && last == lines.size()) return std::string(text);
  std::string out;
  for (size_t i = first; i < last; ++i) {
    out.append(lines[i]);
    out += '\n';
  }
  return out;
}


}  // namespace gdn2
