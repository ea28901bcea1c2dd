// Test helpers: synthetic documents, a byte-level prepared dataset, and splitting shards back into documents.
#pragma once

#include <string>
#include <vector>

#include "core/temp_dir.h"
#include "gdn2/data.h"

namespace gdn2_test {

// n distinct documents of varied length (ASCII, no two alike).
inline std::vector<std::string> synthetic_documents(int n) {
  std::vector<std::string> docs;
  for (int i = 0; i < n; ++i) {
    std::string d = "Document " + std::to_string(i) + ":";
    for (int k = 0; k < 5 + (i * 7) % 23; ++k) d += " word" + std::to_string((i * 31 + k) % 97);
    docs.push_back(d + ".");
  }
  return docs;
}

inline gdn2::PrepareOptions byte_options(int64_t val_every = 10, int64_t shard_tokens = 1000) {
  gdn2::PrepareOptions o;
  o.vocab_size = gdn2::kByteVocabSize;
  o.eos_id = gdn2::kByteEosId;
  o.val_every = val_every;
  o.shard_tokens = shard_tokens;
  return o;
}

// The documents of byte-level tokens: split at eos, bytes back to chars.
inline std::vector<std::string> byte_documents(const std::vector<int32_t>& tokens) {
  std::vector<std::string> docs;
  std::string cur;
  for (int32_t t : tokens) {
    if (t == static_cast<int32_t>(gdn2::kByteEosId)) {
      docs.push_back(cur);
      cur.clear();
    } else {
      cur += static_cast<char>(t);
    }
  }
  return docs;
}

}  // namespace gdn2_test
