// Parsing, validating and writing model configs (gdn2's own, HF Qwen3.5 text, Qwen3-Next dense).
#include "gdn2/model/config.h"

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "gdn2/atomic_file.h"
#include "gdn2/error.h"
#include "model/param_specs.h"

namespace gdn2 {

namespace {

using nlohmann::json;

struct Kind {
  const char* name;
  char letter;
  LayerKind kind;
};
constexpr Kind kKinds[] = {{"gdn2", 'G', LayerKind::gdn2},
                           {"kda", 'K', LayerKind::kda},
                           {"linear_attention", 'D', LayerKind::gdn},
                           {"ssd", 'S', LayerKind::ssd},
                           {"full_attention", 'A', LayerKind::attention},
                           {"sliding_attention", 'W', LayerKind::sliding_attention}};

template <class T>
void read(const json& j, const char* key, T& out, const std::string& where) {
  if (!j.contains(key) || j.at(key).is_null()) return;
  const json& v = j.at(key);
  if constexpr (std::is_same_v<T, bool>) {
    GDN2_CHECK(v.is_boolean(), FormatError, where, ": '", key, "' must be true or false, got ", v.dump());
    out = v.get<bool>();
  } else if constexpr (std::is_integral_v<T>) {
    GDN2_CHECK(v.is_number_integer(), FormatError, where, ": '", key, "' must be an integer, got ", v.dump());
    out = v.get<T>();
  } else if constexpr (std::is_floating_point_v<T>) {
    GDN2_CHECK(v.is_number(), FormatError, where, ": '", key, "' must be a number, got ", v.dump());
    out = v.get<T>();
    GDN2_CHECK(std::isfinite(static_cast<double>(out)), FormatError, where, ": '", key, "' must be finite");
  } else {
    GDN2_CHECK(v.is_string(), FormatError, where, ": '", key, "' must be a string, got ", v.dump());
    out = v.get<std::string>();
  }
}

LayerKind kind_from_name(const std::string& s, const std::string& where) {
  for (const Kind& k : kKinds)
    if (s == k.name) return k.kind;
  GDN2_THROW(FormatError, where, ": unknown layer type '", s,
             "' (expected gdn2, kda, linear_attention, ssd, full_attention or sliding_attention)");
}

LayerKind kind_from_letter(char c, const std::string& where) {
  for (const Kind& k : kKinds)
    if (c == k.letter) return k.kind;
  GDN2_THROW(FormatError, where, ": unknown letter '", std::string(1, c), "' in layer_pattern (expected G K D S A W)");
}

}  // namespace

const char* layer_kind_name(LayerKind k) {
  for (const Kind& x : kKinds)
    if (x.kind == k) return x.name;
  return "?";
}

int64_t ModelConfig::rotary_dim() const {
  int64_t rd = static_cast<int64_t>(static_cast<double>(head_dim) * partial_rotary_factor);
  return rd - rd % 2;
}

ModelConfig ModelConfig::from_json_text(const std::string& text, const std::string& where) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    GDN2_THROW(FormatError, where, ": not valid JSON: ", e.what());
  }
  GDN2_CHECK(j.is_object(), FormatError, where, ": a config must be a JSON object");
  if (j.contains("text_config") && j.at("text_config").is_object()) j = j.at("text_config");  // multimodal Qwen3.5
  ModelConfig c;
  read(j, "model_type", c.model_type, where);
  const bool qwen = c.model_type == "qwen3_5_text" || c.model_type == "qwen3_5" || c.model_type == "qwen3_next";
  if (qwen) {  // HF defaults differ from gdn2's
    c.tie_word_embeddings = false;
    c.linear_norm_eps = c.rms_norm_eps;
  }
  read(j, "vocab_size", c.vocab_size, where);
  read(j, "hidden_size", c.hidden_size, where);
  read(j, "intermediate_size", c.intermediate_size, where);
  read(j, "linear_num_key_heads", c.linear_num_key_heads, where);
  read(j, "linear_key_head_dim", c.linear_key_head_dim, where);
  read(j, "linear_num_value_heads", c.linear_num_value_heads, where);
  read(j, "linear_value_head_dim", c.linear_value_head_dim, where);
  read(j, "linear_conv_kernel_dim", c.linear_conv_kernel_dim, where);
  read(j, "linear_low_rank_dim", c.linear_low_rank_dim, where);
  read(j, "allow_neg_eigval", c.allow_neg_eigval, where);
  read(j, "linear_norm_eps", c.linear_norm_eps, where);
  read(j, "num_attention_heads", c.num_attention_heads, where);
  read(j, "num_key_value_heads", c.num_key_value_heads, where);
  read(j, "head_dim", c.head_dim, where);
  read(j, "partial_rotary_factor", c.partial_rotary_factor, where);
  read(j, "rope_theta", c.rope_theta, where);
  if (j.contains("rope_parameters") && j.at("rope_parameters").is_object()) {
    const json& r = j.at("rope_parameters");
    read(r, "rope_theta", c.rope_theta, where + " rope_parameters");
    read(r, "partial_rotary_factor", c.partial_rotary_factor, where + " rope_parameters");
    std::string type = "default";
    read(r, "rope_type", type, where + " rope_parameters");
    GDN2_CHECK(type == "default", UnsupportedError, where, ": rope_type '", type, "' is not supported (only default)");
  }
  read(j, "sliding_window", c.sliding_window, where);
  read(j, "rms_norm_eps", c.rms_norm_eps, where);
  if (qwen) c.linear_norm_eps = c.rms_norm_eps;
  read(j, "tie_word_embeddings", c.tie_word_embeddings, where);
  read(j, "initializer_range", c.initializer_range, where);
  read(j, "max_position_embeddings", c.max_position_embeddings, where);
  if (j.contains("eos_token_id")) {
    const json& e = j.at("eos_token_id");
    if (e.is_number_integer()) c.eos_token_id = e.get<int64_t>();
    if (e.is_array() && !e.empty() && e[0].is_number_integer()) c.eos_token_id = e[0].get<int64_t>();
  }
  if (c.model_type == "qwen3_next") {
    int64_t experts = 0;
    read(j, "num_experts", experts, where);
    GDN2_CHECK(experts == 0, UnsupportedError, where, ": Qwen3-Next mixture-of-experts MLPs are not supported (",
               experts, " experts); dense-MLP Qwen3-Next checkpoints load");
  }

  int64_t n_layers = -1;
  read(j, "num_hidden_layers", n_layers, where);
  if (j.contains("layer_types") && !j.at("layer_types").is_null()) {
    const json& lt = j.at("layer_types");
    GDN2_CHECK(lt.is_array(), FormatError, where, ": 'layer_types' must be an array of strings");
    for (const json& v : lt) {
      GDN2_CHECK(v.is_string(), FormatError, where, ": 'layer_types' must be an array of strings");
      c.layers.push_back(kind_from_name(v.get<std::string>(), where));
    }
  } else if (j.contains("layer_pattern")) {
    std::string pat;
    read(j, "layer_pattern", pat, where);
    GDN2_CHECK(!pat.empty() && n_layers > 0, FormatError, where,
               ": 'layer_pattern' needs a non-empty pattern and num_hidden_layers");
    for (int64_t i = 0; i < n_layers; ++i) c.layers.push_back(kind_from_letter(pat[i % pat.size()], where));
  } else if (qwen && n_layers > 0) {
    int64_t interval = 4;  // Qwen3.5 / Qwen3-Next default: every 4th layer is full attention
    read(j, "full_attention_interval", interval, where);
    GDN2_CHECK(interval > 0, FormatError, where, ": full_attention_interval must be positive");
    for (int64_t i = 0; i < n_layers; ++i)
      c.layers.push_back((i + 1) % interval == 0 ? LayerKind::attention : LayerKind::gdn);
  }
  GDN2_CHECK(n_layers < 0 || n_layers == c.num_layers(), FormatError, where, ": num_hidden_layers is ", n_layers,
             " but ", c.num_layers(), " layer types are given");
  c.validate(where);
  return c;
}

ModelConfig ModelConfig::load(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  GDN2_CHECK(f.good(), IoError, "cannot open config ", path);
  std::ostringstream ss;
  ss << f.rdbuf();
  GDN2_CHECK(ss.str().size() < (size_t{16} << 20), FormatError, path, ": config larger than 16 MB");
  return from_json_text(ss.str(), path);
}

void ModelConfig::validate(const std::string& where) const {
  auto positive = [&](int64_t v, const char* name, int64_t max) {
    GDN2_CHECK(v > 0 && v <= max, FormatError, where, ": '", name, "' must be in [1, ", max, "], got ", v);
  };
  positive(vocab_size, "vocab_size", int64_t{1} << 24);
  positive(hidden_size, "hidden_size", 1 << 16);
  positive(intermediate_size, "intermediate_size", 1 << 18);
  GDN2_CHECK(!layers.empty() && num_layers() <= 1024, FormatError, where, ": between 1 and 1024 layers, got ",
             num_layers());
  positive(linear_num_key_heads, "linear_num_key_heads", 1024);
  positive(linear_key_head_dim, "linear_key_head_dim", 1024);
  positive(linear_num_value_heads, "linear_num_value_heads", 1024);
  positive(linear_value_head_dim, "linear_value_head_dim", 1024);
  positive(linear_conv_kernel_dim, "linear_conv_kernel_dim", 64);
  GDN2_CHECK(linear_num_value_heads % linear_num_key_heads == 0, FormatError, where,
             ": linear_num_value_heads must be a multiple of linear_num_key_heads");
  GDN2_CHECK(linear_low_rank_dim >= 0 && linear_low_rank_dim <= 1 << 16, FormatError, where,
             ": bad linear_low_rank_dim ", linear_low_rank_dim);
  positive(num_attention_heads, "num_attention_heads", 1024);
  positive(num_key_value_heads, "num_key_value_heads", 1024);
  positive(head_dim, "head_dim", 1024);
  GDN2_CHECK(num_attention_heads % num_key_value_heads == 0, FormatError, where,
             ": num_attention_heads must be a multiple of num_key_value_heads");
  GDN2_CHECK(partial_rotary_factor >= 0 && partial_rotary_factor <= 1, FormatError, where,
             ": partial_rotary_factor must be in [0, 1]");
  GDN2_CHECK(rope_theta > 0, FormatError, where, ": rope_theta must be positive");
  GDN2_CHECK(sliding_window > 0, FormatError, where, ": sliding_window must be positive");
  GDN2_CHECK(rms_norm_eps >= 0 && rms_norm_eps < 1 && linear_norm_eps >= 0 && linear_norm_eps < 1, FormatError, where,
             ": norm eps must be in [0, 1)");
  GDN2_CHECK(initializer_range > 0 && initializer_range < 10, FormatError, where, ": bad initializer_range");
  GDN2_CHECK(eos_token_id < vocab_size, FormatError, where, ": eos_token_id ", eos_token_id, " >= vocab_size");
  GDN2_CHECK(parameter_count() <= (int64_t{1} << 40), FormatError, where, ": the model would have ",
             parameter_count(), " parameters");
}

int64_t ModelConfig::parameter_count() const {
  int64_t n = 0;
  for (const ParamSpec& s : model_param_specs(*this)) {
    int64_t e = 1;
    for (int64_t d : s.shape) e *= d;
    n += e;
  }
  return n;
}

std::string ModelConfig::to_json_text() const {
  json j;
  j["model_type"] = model_type;
  j["architectures"] = json::array({model_type == "gdn2" ? "GDN2ForCausalLM" : "Qwen3_5ForCausalLM"});
  j["vocab_size"] = vocab_size;
  j["hidden_size"] = hidden_size;
  j["intermediate_size"] = intermediate_size;
  j["num_hidden_layers"] = num_layers();
  json types = json::array();
  for (LayerKind k : layers) types.push_back(layer_kind_name(k));
  j["layer_types"] = types;
  j["linear_num_key_heads"] = linear_num_key_heads;
  j["linear_key_head_dim"] = linear_key_head_dim;
  j["linear_num_value_heads"] = linear_num_value_heads;
  j["linear_value_head_dim"] = linear_value_head_dim;
  j["linear_conv_kernel_dim"] = linear_conv_kernel_dim;
  j["linear_low_rank_dim"] = linear_low_rank_dim;
  j["allow_neg_eigval"] = allow_neg_eigval;
  j["linear_norm_eps"] = linear_norm_eps;
  j["num_attention_heads"] = num_attention_heads;
  j["num_key_value_heads"] = num_key_value_heads;
  j["head_dim"] = head_dim;
  j["partial_rotary_factor"] = partial_rotary_factor;
  j["rope_theta"] = rope_theta;
  j["sliding_window"] = sliding_window;
  j["rms_norm_eps"] = rms_norm_eps;
  j["tie_word_embeddings"] = tie_word_embeddings;
  j["initializer_range"] = initializer_range;
  j["max_position_embeddings"] = max_position_embeddings;
  if (eos_token_id >= 0) j["eos_token_id"] = eos_token_id;
  return j.dump(2) + "\n";
}

void ModelConfig::save(const std::string& path) const { atomic_write_file(path, to_json_text()); }

std::string ModelConfig::describe() const {
  std::string pattern;
  for (LayerKind k : layers)
    for (const Kind& x : kKinds)
      if (x.kind == k) pattern += x.letter;
  std::ostringstream os;
  os << model_type << ": " << num_layers() << " layers [" << pattern << "], d=" << hidden_size << ", ffn "
     << intermediate_size << ", vocab " << vocab_size << ", linear heads " << linear_num_key_heads << "/"
     << linear_num_value_heads << " (K " << linear_key_head_dim << ", V " << linear_value_head_dim << "), attention heads "
     << num_attention_heads << "/" << num_key_value_heads << " x " << head_dim << ", "
     << static_cast<double>(parameter_count()) / 1e6 << "M parameters";
  return os.str();
}

}  // namespace gdn2
