// Model configuration (HF-style config.json): the layer pattern of a GDN-2 hybrid, head sizes, norms, init.
//
// One parser serves gdn2's own configs and HF Qwen3.5 text configs (model_type "qwen3_5_text"; Qwen3-Next
// "qwen3_next" with dense MLPs). Layer kinds (config key "layer_types", or the shorthand "layer_pattern", one
// letter per layer, repeated to num_hidden_layers):
//   "gdn2"              G  GDN-2 (fla GatedDeltaNet2): channel-wise b and w
//   "kda"               K  KDA (fla KimiDeltaAttention): scalar β per value head, channel-wise decay
//   "linear_attention"  D  Gated DeltaNet as Qwen3.5 (scalar decay and β per value head)
//   "ssd"               S  GDN-2 without the erase gate (b = 0): SSD-like
//   "full_attention"    A  gated softmax attention as Qwen3.5
//   "sliding_attention" W  the same with a sliding window of `sliding_window` keys
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace gdn2 {

enum class LayerKind { gdn2, kda, gdn, ssd, attention, sliding_attention };

const char* layer_kind_name(LayerKind k);
inline bool layer_is_linear(LayerKind k) { return k != LayerKind::attention && k != LayerKind::sliding_attention; }

struct ModelConfig {
  std::string model_type = "gdn2";
  int64_t vocab_size = 8192;
  int64_t hidden_size = 256;
  int64_t intermediate_size = 768;
  std::vector<LayerKind> layers;  // num_hidden_layers entries

  // Linear-attention mixers.
  int64_t linear_num_key_heads = 4;    // H
  int64_t linear_key_head_dim = 64;    // K
  int64_t linear_num_value_heads = 4;  // HV (GVA when > H)
  int64_t linear_value_head_dim = 64;  // V (= K * expand_v)
  int64_t linear_conv_kernel_dim = 4;
  int64_t linear_low_rank_dim = 0;     // f_proj / g_proj bottleneck; 0 means V (fla)
  bool allow_neg_eigval = false;
  double linear_norm_eps = 1e-5;       // fla's output norm eps (GDN-2/KDA/SSD layers)

  // Attention mixers.
  int64_t num_attention_heads = 4;
  int64_t num_key_value_heads = 2;
  int64_t head_dim = 64;
  double partial_rotary_factor = 0.25;
  double rope_theta = 10000.0;
  int64_t sliding_window = 2048;

  double rms_norm_eps = 1e-6;
  bool tie_word_embeddings = true;
  double initializer_range = 0.02;
  int64_t max_position_embeddings = 1 << 20;
  int64_t eos_token_id = -1;  // -1: none

  int64_t num_layers() const { return static_cast<int64_t>(layers.size()); }
  int64_t low_rank() const { return linear_low_rank_dim > 0 ? linear_low_rank_dim : linear_value_head_dim; }
  int64_t rotary_dim() const;  // head_dim * partial_rotary_factor, even

  // Parses and validates (FormatError naming `where` and the field); throws on unknown layer kinds, bad sizes,
  // non-divisible head counts and on absurd sizes (> 2^40 parameters).
  static ModelConfig from_json_text(const std::string& text, const std::string& where);
  static ModelConfig load(const std::string& path);
  std::string to_json_text() const;
  void save(const std::string& path) const;  // atomic
  void validate(const std::string& where) const;
  int64_t parameter_count() const;
  std::string describe() const;  // one line: layers, sizes, parameters
};

}  // namespace gdn2
