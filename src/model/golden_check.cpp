// fla layer and HF model reference checks (used by `gdn2 layer check`, `gdn2 model check` and the tests).
#include <filesystem>
#include <nlohmann/json.hpp>

#include "gdn2/generate.h"
#include "gdn2/model/checkpoint.h"
#include "gdn2/model/golden.h"
#include "gdn2/safetensors.h"
#include "model/mixer.h"
#include "model/param_specs.h"
#include "model/params.h"

namespace gdn2 {

namespace {

// fla GatedDeltaNet2 constructor arguments -> a one-layer gdn2 config.
ModelConfig fla_layer_config(const std::string& json_text, const std::string& where) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(json_text);
  } catch (const nlohmann::json::exception& e) {
    GDN2_THROW(FormatError, where, ": metadata 'config' is not valid JSON: ", e.what());
  }
  GDN2_CHECK(j.is_object(), FormatError, where, ": metadata 'config' must be a JSON object");
  auto num = [&](const char* key, double fallback) {
    if (!j.contains(key) || j[key].is_null()) return fallback;
    GDN2_CHECK(j[key].is_number(), FormatError, where, ": config '", key, "' must be a number");
    return j[key].get<double>();
  };
  GDN2_CHECK(!j.value("conv_bias", false) && j.value("use_short_conv", true), UnsupportedError, where,
             ": conv_bias=true or use_short_conv=false layers are not supported");
  ModelConfig c;
  c.model_type = "gdn2";
  c.vocab_size = 8;
  c.intermediate_size = 8;
  c.hidden_size = static_cast<int64_t>(num("hidden_size", 2048));
  c.linear_num_key_heads = static_cast<int64_t>(num("num_heads", 16));
  c.linear_key_head_dim = static_cast<int64_t>(num("head_dim", 128));
  c.linear_num_value_heads = static_cast<int64_t>(num("num_v_heads", static_cast<double>(c.linear_num_key_heads)));
  c.linear_value_head_dim = static_cast<int64_t>(num("expand_v", 1.0) * static_cast<double>(c.linear_key_head_dim));
  c.linear_conv_kernel_dim = static_cast<int64_t>(num("conv_size", 4));
  c.linear_norm_eps = num("norm_eps", 1e-5);
  c.allow_neg_eigval = j.value("allow_neg_eigval", false);
  c.layers = {LayerKind::gdn2};
  c.validate(where);
  return c;
}

}  // namespace

GoldenCheck fla_layer_check(const std::string& path, double budget) {
  const SafetensorsFile f = SafetensorsFile::open(path);
  GDN2_CHECK(f.metadata().count("config"), FormatError, path, ": no 'config' in the metadata");
  const ModelConfig c = fla_layer_config(f.metadata().at("config"), path);
  ParamStore params(c, DType::f32);
  const std::string prefix = mixer_prefix(c, 0);
  for (Param& p : params.all()) {
    if (p.spec.name.rfind(prefix, 0) != 0) continue;
    const std::string name = "layer." + p.spec.name.substr(prefix.size());
    GDN2_CHECK(f.contains(name), FormatError, path, ": no tensor '", name, "'");
    const Tensor t = f.get(name);
    GDN2_CHECK(t.numel() == p.value.numel(), FormatError, path, ": '", name, "' is ", t.describe(), ", expected ",
               shape_str(p.spec.shape));
    params.set(p, t);
  }
  std::unique_ptr<Mixer> layer = make_mixer(c, 0, params);
  const Tensor x = f.get("x").to(DType::f32);
  GDN2_CHECK(x.dim() == 3 && x.size(2) == c.hidden_size, FormatError, path, ": x is ", x.describe());
  GoldenCheck r;
  r.what = "fla GatedDeltaNet2 layer: " + x.describe() + ", H=" + std::to_string(c.linear_num_key_heads) +
           " HV=" + std::to_string(c.linear_num_value_heads) + " K=" + std::to_string(c.linear_key_head_dim) +
           " V=" + std::to_string(c.linear_value_head_dim);
  const bool backward = f.contains("dy");
  params.zero_grad();
  const Tensor y = layer->forward(x, nullptr, backward);
  r.errors.emplace_back("y", rel_rms_error(y, f.get("y")));
  if (backward) {
    const Tensor dx = layer->backward(f.get("dy").to(DType::f32));
    params.settle_grads();  // a gradient the layer left untouched reads as zero
    if (f.contains("dx")) r.errors.emplace_back("dx", rel_rms_error(dx, f.get("dx")));
    for (const Param& p : params.all()) {
      if (p.spec.name.rfind(prefix, 0) != 0) continue;
      const std::string name = "grad.layer." + p.spec.name.substr(prefix.size());
      if (f.contains(name)) r.errors.emplace_back(name.substr(5), rel_rms_error(p.grad, f.get(name)));
    }
  }
  for (const auto& [k, e] : r.errors) r.pass = r.pass && e <= budget;
  return r;
}

GoldenCheck model_check(const std::string& dir, double logits_budget) {
  auto model = model_load(dir, DType::f32);
  GoldenCheck r;
  r.what = model->config().describe();
  const std::string expected = dir + "/expected.safetensors";
  if (!std::filesystem::exists(expected)) {
    const Tensor ids = Tensor::from_vector<int32_t>({1, 4}, {0, 1, 2, 3});
    const Tensor logits = model->forward_logits(ids);
    r.errors.emplace_back("finite logits (no expected.safetensors)", all_finite(logits) ? 0.0 : 1.0);
    r.pass = all_finite(logits);
    return r;
  }
  const SafetensorsFile f = SafetensorsFile::open(expected);
  const Tensor ids = f.get("input_ids").to(DType::i32);
  GDN2_CHECK(ids.dim() == 2, FormatError, expected, ": input_ids must be [B, T], got ", ids.describe());
  const Tensor logits = model->forward_logits(ids);
  const double e = rel_rms_error(logits, f.get("logits"));
  r.errors.emplace_back("logits", e);
  r.pass = e <= logits_budget;
  if (f.contains("greedy_ids")) {
    const Tensor g = f.get("greedy_ids").to(DType::i32);
    GDN2_CHECK(g.dim() == 2 && g.size(0) == 1 && g.size(1) <= ids.size(1) + 4096, FormatError, expected,
               ": greedy_ids must be [1, P + N], got ", g.describe());
    const int32_t* gi = g.data<int32_t>();
    // The prompt is the longest prefix of greedy_ids shared with input_ids[0] (the reference's generation prompt).
    const int32_t* in0 = ids.data<int32_t>();
    int64_t P = 0;
    while (P < std::min(g.size(1), ids.size(1)) && gi[P] == in0[P]) ++P;
    if (f.metadata().count("greedy")) {  // "first row prompt ids[:1,:20], 12 new tokens"
      const std::string& m = f.metadata().at("greedy");
      const size_t at = m.find(":1,:");
      if (at != std::string::npos) P = std::min<int64_t>(P, std::atoll(m.c_str() + at + 4));
    }
    GDN2_CHECK(P >= 1 && P < g.size(1), FormatError, expected, ": cannot find the greedy prompt in input_ids");
    SamplingOptions so;
    so.temperature = 0;
    so.max_new_tokens = g.size(1) - P;
    const GenerateResult gen = generate(*model, std::vector<int32_t>(gi, gi + P), so);
    int64_t mismatches = 0;
    for (int64_t i = 0; i < so.max_new_tokens; ++i)
      mismatches += (i < static_cast<int64_t>(gen.tokens.size()) && gen.tokens[i] == gi[P + i]) ? 0 : 1;
    r.errors.emplace_back("greedy tokens (mismatches of " + std::to_string(so.max_new_tokens) + ")",
                          static_cast<double>(mismatches));
    r.pass = r.pass && mismatches == 0;
  }
  return r;
}

}  // namespace gdn2
