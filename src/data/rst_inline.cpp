// reST inline markup to plain text: a single left-to-right scan, no regular expressions.
#include "data/rst_inline.h"

#include <cctype>

namespace gdn2::data_detail {

namespace {

bool alnum(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }
bool space(char c) { return c == ' ' || c == '\t' || c == '\n'; }

// Characters that may precede an inline start-string ("(*emph*)", " **b**").
bool start_ok(std::string_view s, size_t i) {
  if (i == 0) return true;
  const char p = s[i - 1];
  return space(p) || p == '(' || p == '[' || p == '{' || p == '<' || p == '\'' || p == '"' || p == '-' || p == '/' ||
         p == ':';
}

std::string replace_all(std::string s, char from, char to) {
  for (char& c : s)
    if (c == from) c = to;
  return s;
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// The displayed text of interpreted text `content` under `role` ("" for `default` or a hyperlink reference).
std::string render(std::string_view role, std::string_view content) {
  // "title <target>": the title shows.
  if (ends_with(content, ">")) {
    const size_t lt = content.rfind('<');
    if (lt != std::string_view::npos && lt > 0 && space(content[lt - 1])) {
      std::string_view title = content.substr(0, lt);
      while (!title.empty() && space(title.back())) title.remove_suffix(1);
      if (!title.empty()) return std::string(title);
    }
  }
  std::string text(content);
  if (!text.empty() && text[0] == '!') text.erase(0, 1);
  if (!text.empty() && text[0] == '~') {
    text.erase(0, 1);
    const size_t dot = text.rfind('.');
    if (dot != std::string::npos && dot + 1 < text.size()) text.erase(0, dot + 1);
  }
  if (role == "pep" || role == "PEP") return "PEP " + text;
  if (role == "rfc" || role == "RFC") return "RFC " + text;
  if (role == "issue") return "bpo-" + text;
  if (role == "gh") return "gh-" + text;
  if (role == "ref") return replace_all(replace_all(text, '-', ' '), '_', ' ');
  if (role == "doc") {
    const size_t slash = text.rfind('/');
    return replace_all(slash == std::string::npos ? text : text.substr(slash + 1), '_', ' ');
  }
  const bool callable = role == "func" || role == "meth" || role == "c:func" || role == "py:func" || role == "py:meth";
  if (callable && !ends_with(text, ")")) text += "()";
  return text;
}

}  // namespace

std::string rst_inline(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  const size_t n = s.size();
  // Interpreted text whose opening backtick is at `tick`: appends its rendering and moves i past it, or false.
  auto interpreted = [&](size_t tick, std::string_view role) {
    const size_t close = s.find('`', tick + 1);
    if (close == std::string_view::npos || close == tick + 1) return false;
    out += render(role, s.substr(tick + 1, close - tick - 1));
    i = close + 1;
    if (role.empty()) {  // `text`_ and `text`__ hyperlink references
      if (i < n && s[i] == '_') ++i;
      if (i < n && s[i] == '_') ++i;
    }
    return true;
  };
  while (i < n) {
    const char c = s[i];
    if (c == '\\') {
      if (i + 1 < n && s[i + 1] != ' ') out += s[i + 1];  // "\ " separates markup from text: it vanishes
      i += i + 1 < n ? 2 : 1;
      continue;
    }
    if (c == '`') {
      if (i + 1 < n && s[i + 1] == '`') {  // ``inline literal``
        const size_t close = s.find("``", i + 2);
        if (close != std::string_view::npos && close > i + 2) {
          out.append(s.substr(i + 2, close - i - 2));
          i = close + 2;
        } else {
          out += "``";
          i += 2;
        }
        continue;
      }
      if (interpreted(i, "")) continue;
    }
    if (c == ':' && (i == 0 || !alnum(s[i - 1]))) {  // :role:`text`, the role may hold ':' (c:func)
      size_t j = i + 1;
      while (j < n && (alnum(s[j]) || s[j] == '_' || s[j] == '.' || s[j] == '+' || s[j] == '-' || s[j] == ':')) ++j;
      if (j < n && s[j] == '`' && j >= i + 3 && s[j - 1] == ':' && interpreted(j, s.substr(i + 1, j - i - 2)))
        continue;
    }
    if (c == '*' && start_ok(s, i)) {
      const size_t w = (i + 1 < n && s[i + 1] == '*') ? 2 : 1;  // **strong** or *emphasis*
      const std::string_view mark = w == 2 ? "**" : "*";
      if (i + w < n && !space(s[i + w]) && s[i + w] != '*') {
        const size_t close = s.find(mark, i + w);
        const bool ok = close != std::string_view::npos && !space(s[close - 1]) &&
                        (close + w >= n || !alnum(s[close + w])) && (close + w >= n || s[close + w] != '*');
        if (ok) {
          out.append(s.substr(i + w, close - i - w));
          i = close + w;
          continue;
        }
      }
    }
    out += c;
    ++i;
  }
  return out;
}

}  // namespace gdn2::data_detail
