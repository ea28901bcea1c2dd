// Normalization through utf8proc_map; ASCII text takes a fast path (every form leaves it unchanged).
#include "tokenizer/normalizer.h"

#include <utf8proc.h>

#include <cstdlib>
#include <memory>

#include "gdn2/error.h"

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

}  // namespace

std::string Normalizer::apply(std::string_view text) const {
  if (steps.empty() || is_ascii(text)) return std::string(text);
  std::string s(text);
  for (NormForm f : steps) s = normalize_one(s, f);
  return s;
}

}  // namespace gdn2::tokenizer_detail
