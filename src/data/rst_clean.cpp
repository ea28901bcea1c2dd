// reST documents to plain prose: a line scanner with a stack of directive, comment and literal blocks.
#include <algorithm>
#include <cctype>
#include <set>
#include <string>
#include <vector>

#include "data/rst_inline.h"
#include "data/text_util.h"
#include "gdn2/data/corpus.h"

namespace gdn2 {

namespace {

using data_detail::indent_of;
using data_detail::rst_inline;
using data_detail::split_lines;
using data_detail::trim;

// Directives whose line and body vanish (indexing, navigation, includes, authorship, grammar listings).
const std::set<std::string, std::less<>> kDropDirectives = {
    "index", "toctree", "module", "currentmodule", "moduleauthor", "sectionauthor", "highlight", "highlightlang",
    "testsetup", "testcleanup", "include", "literalinclude", "image", "figure", "raw", "tabularcolumns",
    "productionlist", "contents", "program", "audit-event", "audit-event-table", "csv-table", "default-role",
    "role", "math", "c:namespace", "c:namespace-push", "c:namespace-pop", "limited-api-list", "miscnews", "only"};
// Directives whose body is code: kept verbatim.
const std::set<std::string, std::less<>> kLiteralDirectives = {"code-block", "code",     "sourcecode", "doctest",
                                                              "testcode",   "testoutput", "parsed-literal"};
// Object descriptions: the signature is kept as a line (with a word for some kinds), then the body.
const std::set<std::string, std::less<>> kSignatureDirectives = {
    "function", "method", "class", "attribute", "data", "exception", "decorator", "decoratormethod", "classmethod",
    "staticmethod", "coroutinemethod", "coroutinefunction", "abstractmethod", "awaitablemethod", "awaitablefunction",
    "property", "cmdoption", "option", "envvar", "opcode", "pdbcommand", "describe", "object", "type", "module-attr"};

enum class Kind { keep, drop, literal };

struct Block {
  size_t indent;          // the line that opened it; lines indented more belong to it
  Kind kind;
  size_t body_indent = 0;  // literal blocks: the indent of their first line (kept relative to it)
  bool body_seen = false;
};

bool all_of_chars(std::string_view s, std::string_view allowed) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [&](char c) { return allowed.find(c) != std::string_view::npos; });
}

// Section over/underlines, simple-table borders and grid-table borders.
bool adornment(std::string_view text, size_t indent) {
  if (indent == 0 && text.size() >= 2 && std::string_view("=-~*^+#_\"'`:.<>").find(text[0]) != std::string_view::npos &&
      std::all_of(text.begin(), text.end(), [&](char c) { return c == text[0]; }))
    return true;
  if (all_of_chars(text, "= ") && std::count(text.begin(), text.end(), '=') >= 3) return true;
  return text.size() >= 3 && text.front() == '+' && text.back() == '+' && all_of_chars(text, "+-= ");
}

// A directive option line such as ":noindex:" or ":platform: Unix".
bool option_line(std::string_view text) {
  if (text.size() < 3 || text[0] != ':') return false;
  const size_t close = text.find(':', 1);
  if (close == std::string_view::npos || close == 1) return false;
  for (size_t i = 1; i < close; ++i)
    if (!(std::isalnum(static_cast<unsigned char>(text[i])) || text[i] == '-' || text[i] == '_')) return false;
  return close + 1 == text.size() || text[close + 1] == ' ';
}

// Width of a list marker starting `text` ("* ", "- ", "+ ", "1. ", "#. ", "(a) ", "a) "), else 0.
size_t list_marker_width(std::string_view text) {
  if (text.size() >= 2 && (text[0] == '*' || text[0] == '-' || text[0] == '+') && text[1] == ' ') return 2;
  size_t i = text.size() > 0 && text[0] == '(' ? 1 : 0;
  const size_t start = i;
  while (i < text.size() && i - start < 4 && (std::isalnum(static_cast<unsigned char>(text[i])) || text[i] == '#')) ++i;
  if (i == start || i + 1 >= text.size() || text[i + 1] != ' ') return 0;
  if (text[i] == '.' && start == 0) return i + 2;
  if (text[i] == ')') return i + 2;
  return 0;
}

std::string capitalised(std::string_view name) {
  std::string s(name);
  if (!s.empty()) s[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(s[0])));
  return s;
}

// "3.2 some words" -> {"3.2", "some words"}.
std::pair<std::string, std::string> first_word(std::string_view args) {
  const size_t sp = args.find(' ');
  if (sp == std::string_view::npos) return {std::string(args), ""};
  return {std::string(args.substr(0, sp)), std::string(trim(args.substr(sp + 1)))};
}

std::string sentence(const std::string& head, const std::string& rest) {
  return rest.empty() ? head + "." : head + ": " + rst_inline(rest);
}

// The line a kept directive shows in place of ".. name:: args" ("" for none).
std::string directive_line(const std::string& name, std::string_view args) {
  const std::string bare = name.rfind("py:", 0) == 0 ? name.substr(3) : name;
  if (kSignatureDirectives.count(bare) != 0 || name.rfind("c:", 0) == 0 || name.rfind("cpp:", 0) == 0) {
    const std::string a(args);
    if (bare == "class") return "class " + a;
    if (bare == "exception") return "exception " + a;
    if (bare == "decorator" || bare == "decoratormethod") return "@" + a;
    if (bare == "coroutinemethod" || bare == "coroutinefunction") return "coroutine " + a;
    return a;
  }
  if (name == "versionadded" || name == "versionchanged" || name == "deprecated") {
    const auto [version, rest] = first_word(args);
    const std::string head = name == "versionadded"     ? "New in version "
                             : name == "versionchanged" ? "Changed in version "
                                                        : "Deprecated since version ";
    return sentence(head + version, rest);
  }
  if (name == "deprecated-removed") {
    const auto [since, more] = first_word(args);
    const auto [removed, rest] = first_word(more);
    return sentence("Deprecated since version " + since + ", will be removed in version " + removed, rest);
  }
  std::string label;
  if (name == "seealso") label = "See also:";
  else if (name == "impl-detail") label = "CPython implementation detail:";
  else if (name == "availability") label = "Availability:";
  else if (name == "note" || name == "warning" || name == "important" || name == "caution" || name == "attention" ||
           name == "danger" || name == "tip" || name == "hint" || name == "error")
    label = capitalised(name) + ":";
  const std::string text = rst_inline(args);
  if (label.empty()) return text;
  return text.empty() ? label : label + " " + text;
}

class RstScanner {
 public:
  std::string run(std::string_view rst) {
    for (std::string_view line : split_lines(rst)) scan(line);
    flush();
    return out_;
  }

 private:
  // Paragraph lines wait in para_ so that inline markup may span lines; anything else flushes them first.
  void flush() {
    if (para_.empty()) return;
    out_ += rst_inline(para_);
    para_.clear();
  }
  void emit(std::string_view line) {
    flush();
    out_.append(line);
    out_ += '\n';
  }

  Kind top() const { return stack_.empty() ? Kind::keep : stack_.back().kind; }

  void scan(std::string_view line) {
    const std::string_view text = trim(line);
    if (text.empty()) {
      in_doctest_ = false;
      options_depth_ = kNone;
      flush();
      if (top() != Kind::drop) emit("");
      return;
    }
    const size_t ind = indent_of(line);
    while (!stack_.empty() && ind <= stack_.back().indent) stack_.pop_back();
    if (options_depth_ != stack_.size()) options_depth_ = kNone;
    if (pending_literal_ != kNone) {
      if (ind > pending_literal_) stack_.push_back({pending_literal_, Kind::literal});
      pending_literal_ = kNone;
    }
    if (options_depth_ != kNone) {  // options right after a directive line
      if (option_line(text)) return;
      options_depth_ = kNone;
    }
    if (top() == Kind::drop) return;
    if (top() == Kind::literal) {
      Block& b = stack_.back();
      if (!b.body_seen) b = {b.indent, Kind::literal, ind, true};
      emit(std::string(4 + (ind > b.body_indent ? ind - b.body_indent : 0), ' ') + std::string(text));
      return;
    }
    if (in_doctest_ || text.rfind(">>>", 0) == 0) {  // a doctest block: verbatim up to the next blank line
      in_doctest_ = true;
      emit("    " + std::string(text));
      return;
    }
    if (text == ".." || text.rfind(".. ", 0) == 0) {
      explicit_markup(text.size() > 3 ? trim(text.substr(3)) : std::string_view(), ind);
      return;
    }
    if (adornment(text, ind)) {
      flush();
      return;
    }
    std::string t(text);
    if (t.size() >= 2 && t.compare(t.size() - 2, 2, "::") == 0) {  // a literal block follows
      // Indented past the paragraph's text: for "* item::" that is past the bullet.
      pending_literal_ = para_.empty() ? ind + list_marker_width(text) : ind;
      if (t == "::") return;
      t.resize(t.size() - (t.size() >= 3 && t[t.size() - 3] == ' ' ? 3 : 1));
    }
    para_ += t;
    para_ += '\n';
  }

  // ".. something": a directive, a footnote, or else a target, substitution or comment (dropped with its body).
  void explicit_markup(std::string_view rest, size_t ind) {
    size_t j = 0;
    while (j < rest.size() && (std::isalnum(static_cast<unsigned char>(rest[j])) || rest[j] == '-' || rest[j] == '_' ||
                               rest[j] == ':' || rest[j] == '+'))
      ++j;
    const bool directive = j >= 3 && rest.substr(j - 2, 2) == "::" && (j == rest.size() || rest[j] == ' ');
    if (!directive) {
      if (!rest.empty() && rest[0] == '[') {  // footnote or citation: its text stays
        flush();
        para_.append(rest);
        para_ += '\n';
        stack_.push_back({ind, Kind::keep});
        return;
      }
      stack_.push_back({ind, Kind::drop});
      return;
    }
    const std::string name(rest.substr(0, j - 2));
    const std::string_view args = trim(rest.substr(j));
    if (kDropDirectives.count(name) != 0) {
      stack_.push_back({ind, Kind::drop});
      return;
    }
    if (kLiteralDirectives.count(name) != 0) {
      stack_.push_back({ind, Kind::literal});
      options_depth_ = stack_.size();
      return;
    }
    const std::string shown = directive_line(name, args);
    if (!shown.empty()) emit(shown);
    stack_.push_back({ind, Kind::keep});
    options_depth_ = stack_.size();
  }

  static constexpr size_t kNone = static_cast<size_t>(-1);
  std::string out_;
  std::string para_;
  std::vector<Block> stack_;
  size_t pending_literal_ = kNone;  // indent of a paragraph that ended with "::"
  size_t options_depth_ = kNone;    // stack depth of the directive whose options may follow
  bool in_doctest_ = false;
};

}  // namespace

std::string rst_to_text(std::string_view rst) { return RstScanner().run(rst); }

}  // namespace gdn2
