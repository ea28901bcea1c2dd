// Unicode normalizers of a tokenizer.json (NFC, NFD, NFKC, NFKD and sequences of them), through utf8proc.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace gdn2::tokenizer_detail {

enum class NormForm { nfc, nfd, nfkc, nfkd };

const char* norm_form_name(NormForm f);

struct Normalizer {
  std::vector<NormForm> steps;  // applied in order; empty: the identity

  bool identity() const { return steps.empty(); }
  // `text` (valid UTF-8) normalized. Pure ASCII text is returned unchanged without a call into utf8proc.
  std::string apply(std::string_view text) const;
};

}  // namespace gdn2::tokenizer_detail
