// Helpers for model tests: tiny configs covering every layer kind, random token batches, scratch directories.
#pragma once

#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "gdn2/model/config.h"
#include "gdn2/tensor.h"

namespace gdn2::test {

// A tiny hybrid with one layer of every kind (GDN-2, KDA, Qwen GDN, SSD, full and sliding attention), GVA and
// neg-eigval on, untied head: small enough for finite differences in fp64.
inline ModelConfig tiny_config(const std::string& pattern = "GKDSAW", bool tied = false) {
  ModelConfig c;
  c.vocab_size = 23;
  c.hidden_size = 16;
  c.intermediate_size = 24;
  c.linear_num_key_heads = 1;
  c.linear_key_head_dim = 8;
  c.linear_num_value_heads = 2;
  c.linear_value_head_dim = 6;
  c.linear_low_rank_dim = 5;
  c.allow_neg_eigval = true;
  c.num_attention_heads = 2;
  c.num_key_value_heads = 1;
  c.head_dim = 8;
  c.partial_rotary_factor = 0.5;
  c.sliding_window = 4;
  c.tie_word_embeddings = tied;
  c.initializer_range = 0.2;  // larger than usual so that every path carries signal
  for (char ch : pattern) {
    switch (ch) {
      case 'G': c.layers.push_back(LayerKind::gdn2); break;
      case 'K': c.layers.push_back(LayerKind::kda); break;
      case 'D': c.layers.push_back(LayerKind::gdn); break;
      case 'S': c.layers.push_back(LayerKind::ssd); break;
      case 'A': c.layers.push_back(LayerKind::attention); break;
      default: c.layers.push_back(LayerKind::sliding_attention); break;
    }
  }
  c.validate("tiny_config");
  return c;
}

inline Tensor random_ids(int64_t B, int64_t T, int64_t V, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<int32_t> v(static_cast<size_t>(B * T));
  for (int32_t& x : v) x = static_cast<int32_t>(rng() % static_cast<uint64_t>(V));
  return Tensor::from_vector<int32_t>({B, T}, v);
}

// A fresh empty directory under the system temp dir, removed on destruction.
struct ScratchDir {
  std::string path;
  explicit ScratchDir(const std::string& name) {
    path = (std::filesystem::temp_directory_path() / ("gdn2_test_" + name + "_" + std::to_string(::getpid()))).string();
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

}  // namespace gdn2::test
