// Helpers for the CUDA model tests: a config with every layer kind at sizes where the GPU kernels take their real
// paths, and copying a CPU model's parameters into a GPU model.
#pragma once

#include "gdn2/model/lm.h"
#include "model/model_test_util.h"
#include "model/params.h"

namespace gdn2::test {

// Every layer kind (GDN-2, KDA, Qwen GDN, SSD-like, full and sliding attention) at sizes where the GPU kernels take
// their real paths: 64-token chunks over T > 64, head dims of 32 and 64.
inline ModelConfig gpu_config() {
  ModelConfig c = tiny_config("GKDSAW");
  c.vocab_size = 301;
  c.hidden_size = 96;
  c.intermediate_size = 160;
  c.linear_num_key_heads = 2;
  c.linear_key_head_dim = 32;
  c.linear_num_value_heads = 4;
  c.linear_value_head_dim = 32;
  c.linear_low_rank_dim = 16;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = 64;
  c.partial_rotary_factor = 0.25;
  c.sliding_window = 37;
  c.initializer_range = 0.05;
  c.validate("gpu_config");
  return c;
}

// The CPU model's parameter values copied into a model on the GPU.
inline void copy_params(const LanguageModel& from, LanguageModel& to) {
  for (Param& p : to.params().all()) to.params().set(p, from.params().at(p.spec.name).value);
}

}  // namespace gdn2::test
