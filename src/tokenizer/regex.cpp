// PCRE2 compilation and match iteration for pre-tokenizer regexes, with the Oniguruma -> PCRE2 escape rewrite.
#define PCRE2_CODE_UNIT_WIDTH 8
#include "tokenizer/regex.h"

#include <pcre2.h>

#include <cctype>

#include "gdn2/error.h"

namespace gdn2::tokenizer_detail {

namespace {

// Unicode White_Space as class items.
constexpr const char* kSpaceItems =
    "\\x{9}-\\x{d}\\x{20}\\x{85}\\x{a0}\\x{1680}\\x{2000}-\\x{200a}\\x{2028}\\x{2029}\\x{202f}\\x{205f}\\x{3000}";
constexpr const char* kWordItems = "\\p{L}\\p{M}\\p{Nd}\\p{Pc}";
constexpr const char* kHexItems = "0-9a-fA-F";

std::string pcre2_message(int code) {
  PCRE2_UCHAR buf[256];
  pcre2_get_error_message(code, buf, sizeof(buf));
  return std::string(reinterpret_cast<const char*>(buf));
}

// Per-thread match state: one ovector pair and a JIT stack large enough for long subjects.
struct MatchState {
  pcre2_match_data* data = nullptr;
  pcre2_match_context* ctx = nullptr;
  pcre2_jit_stack* stack = nullptr;
  MatchState() {
    data = pcre2_match_data_create(1, nullptr);
    ctx = pcre2_match_context_create(nullptr);
    stack = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, nullptr);
    if (data == nullptr || ctx == nullptr || stack == nullptr) throw std::bad_alloc();
    pcre2_jit_stack_assign(ctx, nullptr, stack);
  }
  ~MatchState() {
    pcre2_jit_stack_free(stack);
    pcre2_match_context_free(ctx);
    pcre2_match_data_free(data);
  }
};

MatchState& match_state() {
  thread_local MatchState state;
  return state;
}

}  // namespace

std::string onig_to_pcre2(std::string_view p) {
  std::string out;
  out.reserve(p.size() + 64);
  int class_depth = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    const char c = p[i];
    if (c == '\\' && i + 1 < p.size()) {
      const char e = p[i + 1];
      const bool in_class = class_depth > 0;
      auto put_class = [&](const char* items, bool negated) {
        if (in_class) {
          out += items;
        } else {
          out += negated ? "[^" : "[";
          out += items;
          out += "]";
        }
      };
      switch (e) {
        case 's': put_class(kSpaceItems, false); ++i; continue;
        case 'w': put_class(kWordItems, false); ++i; continue;
        case 'h': put_class(kHexItems, false); ++i; continue;
        case 'S':
          if (in_class) out += "\\S\\x{180e}"; else put_class(kSpaceItems, true);
          ++i;
          continue;
        case 'W':
          if (in_class) out += "\\W"; else put_class(kWordItems, true);
          ++i;
          continue;
        case 'H':
          if (in_class) out += "\\x{0}-/:-@G-`g-\\x{10ffff}"; else put_class(kHexItems, true);
          ++i;
          continue;
        case 'u':
          if (i + 5 < p.size() && std::isxdigit(static_cast<unsigned char>(p[i + 2])) &&
              std::isxdigit(static_cast<unsigned char>(p[i + 3])) &&
              std::isxdigit(static_cast<unsigned char>(p[i + 4])) &&
              std::isxdigit(static_cast<unsigned char>(p[i + 5]))) {
            out += "\\x{";
            out.append(p.substr(i + 2, 4));
            out += "}";
            i += 5;
            continue;
          }
          break;
        default:
          break;
      }
      out += c;
      out += e;
      ++i;
      continue;
    }
    if (c == '[') {
      if (class_depth > 0 && i + 1 < p.size() && p[i + 1] == ':') {  // POSIX class [:alpha:] inside a class
        const size_t end = p.find(":]", i + 2);
        if (end != std::string_view::npos) {
          out.append(p.substr(i, end + 2 - i));
          i = end + 1;
          continue;
        }
      }
      ++class_depth;
      out += c;
      // A ']' right after '[' or '[^' is a literal.
      if (i + 1 < p.size() && p[i + 1] == '^') {
        out += '^';
        ++i;
      }
      if (i + 1 < p.size() && p[i + 1] == ']') {
        out += "\\]";
        ++i;
      }
      continue;
    }
    if (c == ']' && class_depth > 0) --class_depth;
    out += c;
  }
  return out;
}

Regex::Regex(const std::string& onig_pattern) : pattern_(onig_pattern) {
  const std::string translated = onig_to_pcre2(onig_pattern);
  int err = 0;
  PCRE2_SIZE offset = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(translated.data()), translated.size(),
                                   PCRE2_UTF | PCRE2_UCP | PCRE2_NO_UTF_CHECK, &err, &offset, nullptr);
  if (code == nullptr)
    GDN2_THROW(ValueError, "regex does not compile: ", pcre2_message(err), " at offset ", offset, " of '", translated,
               "'");
  code_ = code;
  jit_ = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
}

Regex::~Regex() { pcre2_code_free(static_cast<pcre2_code*>(code_)); }

void Regex::find_all(std::string_view text, std::vector<Span>& out) const {
  auto* code = static_cast<pcre2_code*>(code_);
  MatchState& st = match_state();
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t start = 0;
  bool have_last = false;
  size_t last_end = 0;
  while (start <= text.size()) {
    const int rc = jit_ ? pcre2_jit_match(code, subject, text.size(), start, 0, st.data, st.ctx)
                        : pcre2_match(code, subject, text.size(), start, PCRE2_NO_UTF_CHECK, st.data, st.ctx);
    if (rc == PCRE2_ERROR_NOMATCH) return;
    if (rc < 0) GDN2_THROW(ValueError, "regex match failed: ", pcre2_message(rc), " (pattern '", pattern_, "')");
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(st.data);
    const size_t b = ov[0], e = ov[1];
    if (b == e && have_last && last_end == e) {
      // Skip an empty match right after the previous match: retry one character further on.
      if (start >= text.size()) return;
      size_t next = start + 1;
      while (next < text.size() && (static_cast<unsigned char>(text[next]) & 0xc0) == 0x80) ++next;
      start = next;
      continue;
    }
    out.emplace_back(b, e);
    have_last = true;
    last_end = e;
    start = e;  // after an empty match the next search finds it again and skips one character
  }
}

}  // namespace gdn2::tokenizer_detail
