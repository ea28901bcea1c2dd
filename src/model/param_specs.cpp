// Parameter names and shapes of every layer kind (fla names for GDN-2/KDA/SSD, HF Qwen3.5 names otherwise).
#include "model/param_specs.h"

namespace gdn2 {

namespace {

// Marks the specs named p + name (in `names`) as members of group p + group.
void group_specs(std::vector<ParamSpec>& s, const std::string& p, const std::vector<std::string>& names,
                 const std::string& group) {
  for (ParamSpec& x : s)
    for (const std::string& n : names)
      if (x.name == p + n) x.group = p + group;
}

void linear_specs(const ModelConfig& c, LayerKind kind, const std::string& p, std::vector<ParamSpec>& s) {
  const int64_t D = c.hidden_size, H = c.linear_num_key_heads, K = c.linear_key_head_dim,
                HV = c.linear_num_value_heads, V = c.linear_value_head_dim, W = c.linear_conv_kernel_dim,
                R = c.low_rank();
  if (kind == LayerKind::gdn) {  // Qwen3.5 Gated DeltaNet
    const int64_t conv_dim = 2 * H * K + HV * V;
    s.push_back({p + "in_proj_qkv.weight", {conv_dim, D}});
    s.push_back({p + "in_proj_z.weight", {HV * V, D}});
    s.push_back({p + "in_proj_b.weight", {HV, D}});
    s.push_back({p + "in_proj_a.weight", {HV, D}});
    s.push_back({p + "conv1d.weight", {conv_dim, 1, W}, ParamInit::conv});
    s.push_back({p + "A_log", {HV}, ParamInit::a_log, false});
    s.push_back({p + "dt_bias", {HV}, ParamInit::dt_bias, false});
    s.push_back({p + "norm.weight", {V}, ParamInit::ones, false});
    s.push_back({p + "out_proj.weight", {D, HV * V}, ParamInit::normal_residual});
    group_specs(s, p, {"in_proj_qkv.weight", "in_proj_z.weight", "in_proj_b.weight", "in_proj_a.weight"}, "in");
    return;
  }
  // fla GatedDeltaNet2 (gdn2, ssd) and KimiDeltaAttention (kda).
  const int64_t Hg = kind == LayerKind::kda ? HV : H;  // heads of the decay gate
  s.push_back({p + "q_proj.weight", {H * K, D}});
  s.push_back({p + "k_proj.weight", {H * K, D}});
  s.push_back({p + "v_proj.weight", {HV * V, D}});
  s.push_back({p + "q_conv1d.weight", {H * K, 1, W}, ParamInit::conv});
  s.push_back({p + "k_conv1d.weight", {H * K, 1, W}, ParamInit::conv});
  s.push_back({p + "v_conv1d.weight", {HV * V, 1, W}, ParamInit::conv});
  s.push_back({p + "f_proj.0.weight", {R, D}});
  s.push_back({p + "f_proj.1.weight", {Hg * K, R}});
  if (kind == LayerKind::gdn2) s.push_back({p + "b_proj.weight", {H * K, D}});
  if (kind == LayerKind::kda) s.push_back({p + "b_proj.weight", {HV, D}});
  if (kind != LayerKind::kda) s.push_back({p + "w_proj.weight", {HV * V, D}});
  s.push_back({p + "A_log", {Hg}, ParamInit::a_log, false});
  s.push_back({p + "dt_bias", {Hg * K}, ParamInit::dt_bias, false});
  s.push_back({p + "g_proj.0.weight", {R, D}});
  s.push_back({p + "g_proj.1.weight", {HV * V, R}});
  s.push_back({p + "g_proj.1.bias", {HV * V}, ParamInit::zeros, false});
  s.push_back({p + "o_norm.weight", {V}, ParamInit::ones, false});
  s.push_back({p + "o_proj.weight", {D, HV * V}, ParamInit::normal_residual});
  group_specs(s, p, {"q_proj.weight", "k_proj.weight", "v_proj.weight", "f_proj.0.weight", "b_proj.weight",
                     "w_proj.weight", "g_proj.0.weight"}, "in");
}

void attention_specs(const ModelConfig& c, const std::string& p, std::vector<ParamSpec>& s) {
  const int64_t D = c.hidden_size, Hq = c.num_attention_heads, Hkv = c.num_key_value_heads, hd = c.head_dim;
  s.push_back({p + "q_proj.weight", {Hq * hd * 2, D}});  // per head: [query | output gate]
  s.push_back({p + "k_proj.weight", {Hkv * hd, D}});
  s.push_back({p + "v_proj.weight", {Hkv * hd, D}});
  s.push_back({p + "o_proj.weight", {D, Hq * hd}, ParamInit::normal_residual});
  s.push_back({p + "q_norm.weight", {hd}, ParamInit::zeros, false});
  s.push_back({p + "k_norm.weight", {hd}, ParamInit::zeros, false});
  group_specs(s, p, {"q_proj.weight", "k_proj.weight", "v_proj.weight"}, "in");
}

}  // namespace

std::string layer_prefix(int64_t layer) { return "model.layers." + std::to_string(layer) + "."; }

std::string mixer_prefix(const ModelConfig& c, int64_t layer) {
  return layer_prefix(layer) + (layer_is_linear(c.layers[static_cast<size_t>(layer)]) ? "linear_attn." : "self_attn.");
}

std::vector<ParamSpec> model_param_specs(const ModelConfig& c) {
  std::vector<ParamSpec> s;
  const int64_t D = c.hidden_size, F = c.intermediate_size;
  s.push_back({"model.embed_tokens.weight", {c.vocab_size, D}});
  for (int64_t i = 0; i < c.num_layers(); ++i) {
    const std::string p = layer_prefix(i);
    s.push_back({p + "input_layernorm.weight", {D}, ParamInit::zeros, false});
    const LayerKind kind = c.layers[static_cast<size_t>(i)];
    if (layer_is_linear(kind))
      linear_specs(c, kind, mixer_prefix(c, i), s);
    else
      attention_specs(c, mixer_prefix(c, i), s);
    s.push_back({p + "post_attention_layernorm.weight", {D}, ParamInit::zeros, false});
    s.push_back({p + "mlp.gate_proj.weight", {F, D}});
    s.push_back({p + "mlp.up_proj.weight", {F, D}});
    s.push_back({p + "mlp.down_proj.weight", {D, F}, ParamInit::normal_residual});
    group_specs(s, p, {"mlp.gate_proj.weight", "mlp.up_proj.weight"}, "mlp.gate_up");
  }
  s.push_back({"model.norm.weight", {D}, ParamInit::zeros, false});
  if (!c.tie_word_embeddings) s.push_back({"lm_head.weight", {c.vocab_size, D}});
  return s;
}

}  // namespace gdn2
