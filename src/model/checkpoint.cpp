// Saving and loading model directories: gdn2, HF Qwen3.5 (flat), Qwen3-Next (grouped), sharded or single-file.
#include "gdn2/model/checkpoint.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "gdn2/safetensors.h"
#include "model/params.h"

namespace gdn2 {

namespace {

void make_dir(const std::string& dir) {
  if (::mkdir(dir.c_str(), 0777) != 0 && errno != EEXIST)
    GDN2_THROW(IoError, "cannot create directory ", dir, ": ", std::strerror(errno));
}

bool file_exists(const std::string& path) {
  struct stat st{};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

// Copies a file tensor into a parameter, converting dtype, checking shape and finiteness.
void copy_into(ParamStore& params, Param& p, const Tensor& t, const std::string& where) {
  GDN2_CHECK(t.numel() == p.value.numel() && (t.shape() == p.spec.shape || t.numel() == 0), FormatError, where,
             ": tensor for '", p.spec.name, "' is ", t.describe(), ", the model expects ", shape_str(p.spec.shape));
  GDN2_CHECK(dtype_is_float(t.dtype()), FormatError, where, ": tensor for '", p.spec.name, "' is ", t.describe());
  const Tensor v = t.to(params.dtype());
  GDN2_CHECK(all_finite(v), FormatError, where, ": tensor for '", p.spec.name, "' has NaN or infinite values");
  params.set(p, v);
}

// The rows [r0, r0 + n) of a 2-D tensor.
Tensor rows(const Tensor& t, int64_t r0, int64_t n) { return t.slice0(r0, r0 + n); }

Tensor stack_rows(const std::vector<Tensor>& parts) {
  int64_t n = 0;
  for (const Tensor& p : parts) n += p.size(0);
  Tensor out = Tensor::empty({n, parts[0].size(1)}, parts[0].dtype());
  auto* dst = static_cast<std::byte*>(out.raw_mut());
  for (const Tensor& p : parts) {
    std::memcpy(dst, p.raw(), p.nbytes());
    dst += p.nbytes();
  }
  return out;
}

// Qwen3-Next groups the linear-attention input projections per q/k head: in_proj_qkvz rows are, for each of the
// H groups, [q (K) | k (K) | v (G·V) | z (G·V)], and in_proj_ba rows [b (G) | a (G)], G = HV / H.
void regroup_qwen3_next(const ModelConfig& c, const Tensor& qkvz, const Tensor& ba, std::map<std::string, Tensor>& out,
                        const std::string& where) {
  const int64_t H = c.linear_num_key_heads, K = c.linear_key_head_dim, G = c.linear_num_value_heads / H,
                V = c.linear_value_head_dim, per = 2 * K + 2 * G * V;
  GDN2_CHECK(qkvz.dim() == 2 && qkvz.size(0) == H * per, FormatError, where, ": in_proj_qkvz is ", qkvz.describe(),
             ", expected ", H * per, " rows");
  GDN2_CHECK(ba.dim() == 2 && ba.size(0) == H * 2 * G, FormatError, where, ": in_proj_ba is ", ba.describe(),
             ", expected ", H * 2 * G, " rows");
  std::vector<Tensor> q, k, v, z, b, a;
  for (int64_t h = 0; h < H; ++h) {
    q.push_back(rows(qkvz, h * per, K));
    k.push_back(rows(qkvz, h * per + K, K));
    v.push_back(rows(qkvz, h * per + 2 * K, G * V));
    z.push_back(rows(qkvz, h * per + 2 * K + G * V, G * V));
    b.push_back(rows(ba, h * 2 * G, G));
    a.push_back(rows(ba, h * 2 * G + G, G));
  }
  std::vector<Tensor> qkv = q;
  qkv.insert(qkv.end(), k.begin(), k.end());
  qkv.insert(qkv.end(), v.begin(), v.end());
  out["in_proj_qkv.weight"] = stack_rows(qkv);
  out["in_proj_z.weight"] = stack_rows(z);
  out["in_proj_b.weight"] = stack_rows(b);
  out["in_proj_a.weight"] = stack_rows(a);
}

// Tensor name -> (file, name in file) over one or several shards.
struct WeightIndex {
  std::map<std::string, std::string> file_of;  // canonical name -> shard path
  std::map<std::string, std::string> raw_name;  // canonical name -> name in the shard
  std::map<std::string, SafetensorsFile> files;
};

std::string canonical(const std::string& name) {
  const std::string mm = "model.language_model.";
  if (name.rfind(mm, 0) == 0) return "model." + name.substr(mm.size());
  return name;
}

bool skipped(const std::string& name) {
  return name.rfind("mtp.", 0) == 0 || name.rfind("model.visual.", 0) == 0 || name.rfind("visual.", 0) == 0 ||
         name.find("rotary_emb.inv_freq") != std::string::npos;
}

WeightIndex index_weights(const std::string& dir) {
  WeightIndex ix;
  std::vector<std::string> shards;
  const std::string index_path = dir + "/model.safetensors.index.json";
  if (file_exists(dir + "/model.safetensors")) {
    shards.push_back("model.safetensors");
  } else {
    GDN2_CHECK(file_exists(index_path), FormatError, dir, ": no model.safetensors or model.safetensors.index.json");
    std::ifstream f(index_path);
    std::stringstream ss;
    ss << f.rdbuf();
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(ss.str());
    } catch (const nlohmann::json::exception& e) {
      GDN2_THROW(FormatError, index_path, ": not valid JSON: ", e.what());
    }
    GDN2_CHECK(j.is_object() && j.contains("weight_map") && j["weight_map"].is_object(), FormatError, index_path,
               ": no 'weight_map' object");
    std::set<std::string> unique;
    for (auto& [name, file] : j["weight_map"].items()) {
      GDN2_CHECK(file.is_string(), FormatError, index_path, ": weight_map['", name, "'] is not a file name");
      const std::string fname = file.get<std::string>();
      GDN2_CHECK(fname.find('/') == std::string::npos && fname.find("..") == std::string::npos, FormatError, index_path,
                 ": shard name '", fname, "' must be a plain file name in the directory");
      unique.insert(fname);
    }
    shards.assign(unique.begin(), unique.end());
  }
  for (const std::string& s : shards) {
    SafetensorsFile f = SafetensorsFile::open(dir + "/" + s);
    for (const std::string& n : f.names()) {
      const std::string c = canonical(n);
      GDN2_CHECK(ix.file_of.count(c) == 0, FormatError, dir, ": tensor '", n, "' appears in two shards");
      ix.file_of[c] = s;
      ix.raw_name[c] = n;
    }
    ix.files.emplace(s, std::move(f));
  }
  return ix;
}

}  // namespace

void model_save(const LanguageModel& model, const std::string& dir, const std::map<std::string, std::string>& metadata) {
  make_dir(dir);
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (const Param& p : model.params().all()) tensors.emplace_back(p.spec.name, p.value.cpu());
  std::map<std::string, std::string> meta = metadata;
  meta["format"] = "pt";
  safetensors_write(dir + "/model.safetensors", tensors, meta);
  model.config().save(dir + "/config.json");
}

void model_load_tensors(LanguageModel& model, const SafetensorsFile& file,
                        const std::function<std::string(const std::string&)>& rename) {
  for (Param& p : model.params().all()) {
    const std::string name = rename(p.spec.name);
    if (name.empty()) continue;
    GDN2_CHECK(file.contains(name), FormatError, file.path(), ": no tensor '", name, "' for parameter '", p.spec.name,
               "'");
    copy_into(model.params(), p, file.get(name), file.path());
  }
}

std::unique_ptr<LanguageModel> model_load(const std::string& dir, DType dtype, Device device) {
  const ModelConfig cfg = ModelConfig::load(dir + "/config.json");
  auto model = std::make_unique<LanguageModel>(cfg, dtype, device);
  WeightIndex ix = index_weights(dir);
  auto get = [&](const std::string& name) -> Tensor {
    const auto it = ix.file_of.find(name);
    if (it == ix.file_of.end()) return Tensor();
    return ix.files.at(it->second).get(ix.raw_name.at(name));
  };
  std::set<std::string> used;
  // Qwen3-Next grouped projections, converted per layer.
  std::map<std::string, Tensor> converted;
  for (int64_t i = 0; i < cfg.num_layers(); ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".linear_attn.";
    const Tensor qkvz = get(p + "in_proj_qkvz.weight"), ba = get(p + "in_proj_ba.weight");
    if (!qkvz.defined() && !ba.defined()) continue;
    GDN2_CHECK(qkvz.defined() && ba.defined(), FormatError, dir, ": layer ", i,
               " has only one of in_proj_qkvz / in_proj_ba");
    std::map<std::string, Tensor> parts;
    regroup_qwen3_next(cfg, qkvz, ba, parts, dir);
    for (auto& [k, t] : parts) converted[p + k] = t;
    used.insert(p + "in_proj_qkvz.weight");
    used.insert(p + "in_proj_ba.weight");
  }
  for (Param& prm : model->params().all()) {
    const std::string& n = prm.spec.name;
    Tensor t;
    if (converted.count(n)) {
      t = converted[n];
    } else {
      t = get(n);
      if (!t.defined() && n == "lm_head.weight") t = get("model.embed_tokens.weight");  // tied in the file only
      GDN2_CHECK(t.defined(), FormatError, dir, ": checkpoint has no tensor '", n, "'");
      used.insert(n);
    }
    copy_into(model->params(), prm, t, dir);
  }
  for (const auto& [name, file] : ix.file_of) {
    if (used.count(name) || skipped(name)) continue;
    if (name == "lm_head.weight" && cfg.tie_word_embeddings) continue;
    GDN2_THROW(FormatError, dir, ": unexpected tensor '", ix.raw_name[name], "' in ", file,
               " (does config.json match the weights?)");
  }
  return model;
}

}  // namespace gdn2
