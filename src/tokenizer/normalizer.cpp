// Normalization through utf8proc_map; ASCII text takes a fast path (every form leaves it unchanged).
#include "tokenizer/normalizer.h"

#include <utf8proc.h>

#include <cstdlib>
#include <memory>
#include <utility>

#include "gdn2/error.h"
#include "tokenizer/utf8.h"

namespace gdn2::tokenizer_detail {

const char* norm_form_name(NormForm f) {
  switch (f) {
    case NormForm::nfc: return "NFC";
    case NormForm::nfd: return "NFD";
    case NormForm::nfkc: return "NFKC";
    case NormForm::nfkd: return "NFKD";
  }
  return "?";
}

namespace {

bool is_ascii(std::string_view s) {
  for (char c : s)
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  return true;
}

std::string normalize_one(std::string_view text, NormForm f) {
  int options = UTF8PROC_STABLE;
  switch (f) {
    case NormForm::nfc: options |= UTF8PROC_COMPOSE; break;
    case NormForm::nfd: options |= UTF8PROC_DECOMPOSE; break;
    case NormForm::nfkc: options |= UTF8PROC_COMPOSE | UTF8PROC_COMPAT; break;
    case NormForm::nfkd: options |= UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT; break;
  }
  utf8proc_uint8_t* out = nullptr;
  const utf8proc_ssize_t n =
      utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text.data()), static_cast<utf8proc_ssize_t>(text.size()),
                   &out, static_cast<utf8proc_option_t>(options));
  std::unique_ptr<utf8proc_uint8_t, decltype(&std::free)> guard(out, &std::free);
  if (n < 0) GDN2_THROW(ValueError, "normalizer ", norm_form_name(f), ": ", utf8proc_errmsg(n));
  return std::string(reinterpret_cast<const char*>(out), static_cast<size_t>(n));
}

// Characters before which NFC never changes anything: starters (ccc 0) that are NFC_QC=Yes and are never the
// second element of a canonical composition. Hand-picked common blocks, checked against Unicode's data with
// Python's unicodedata (every code point in these ranges satisfies the three conditions).
bool nfc_boundary_before(char32_t c) {
  static constexpr std::pair<char32_t, char32_t> kRanges[] = {
      {0x0000, 0x02ff}, {0x0370, 0x0373}, {0x0375, 0x0377}, {0x037a, 0x037d}, {0x037f, 0x037f}, {0x0384, 0x0386},
      {0x0388, 0x03ff}, {0x0400, 0x0482}, {0x048a, 0x052f}, {0x2010, 0x2027}, {0x2030, 0x205e}, {0x3000, 0x3029},
      {0x3030, 0x303f}, {0x3041, 0x3096}, {0x309b, 0x309f}, {0x30a0, 0x30ff}, {0x3400, 0x4dbf}, {0x4e00, 0x9fff},
      {0xac00, 0xd7a3}, {0xff01, 0xffef}, {0x1f300, 0x1faff}};
  if (c < 0x300) return true;
  for (const auto& [lo, hi] : kRanges)
    if (c >= lo && c <= hi) return true;
  return false;
}

// NFC that hands utf8proc only the stretches around characters that could change: the text is cut before every
// boundary character (NFC acts on the pieces independently), and pieces of boundary characters alone are copied.
std::string nfc_fast(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t seg = 0;
  bool seg_plain = true;  // the current piece holds only its leading boundary character
  size_t i = 0;
  while (i < text.size()) {
    const size_t at = i;
    const char32_t c = utf8_next(text, i);
    if (nfc_boundary_before(c)) {
      if (at > seg) {
        if (seg_plain) out.append(text.substr(seg, at - seg)); else out += normalize_one(text.substr(seg, at - seg), NormForm::nfc);
      }
      seg = at;
      seg_plain = true;
    } else {
      seg_plain = false;
    }
  }
  if (text.size() > seg) {
    if (seg_plain) out.append(text.substr(seg)); else out += normalize_one(text.substr(seg), NormForm::nfc);
  }
  return out;
}

}  // namespace

std::string Normalizer::apply(std::string_view text) const {
  if (steps.empty() || is_ascii(text)) return std::string(text);
  std::string s(text);
  for (NormForm f : steps) s = f == NormForm::nfc ? nfc_fast(s) : normalize_one(s, f);
  return s;
}

}  // namespace gdn2::tokenizer_detail
