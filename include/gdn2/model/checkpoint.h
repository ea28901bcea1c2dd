// Model checkpoints on disk: HF-format directories (config.json + safetensors, sharded or not) for gdn2's own
// models, HF Qwen3.5 text models and Qwen3-Next's grouped linear-attention layout.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "gdn2/model/lm.h"

namespace gdn2 {

class SafetensorsFile;

// Writes DIR/config.json and DIR/model.safetensors, each atomically (temp file, fsync, rename); creates DIR.
void model_save(const LanguageModel& model, const std::string& dir,
                const std::map<std::string, std::string>& metadata = {});

// Loads DIR/config.json and the weights: DIR/model.safetensors or the shards listed by
// DIR/model.safetensors.index.json. Names may carry the multimodal prefix "model.language_model." ; "mtp.*" and
// vision tensors are skipped; Qwen3-Next's in_proj_qkvz / in_proj_ba are regrouped into Qwen3.5's flat layout.
// Every parameter must be present with its exact shape and finite values (FormatError otherwise). The model is made
// on `device` with LanguageModel's default compute dtype there.
std::unique_ptr<LanguageModel> model_load(const std::string& dir, DType dtype = DType::f32,
                                          Device device = Device::cpu);

// Copies tensors of `file` into the model's parameters: for each model parameter name n, rename(n) gives the file's
// tensor name ("" skips the parameter). Missing or misshapen tensors throw FormatError naming them.
void model_load_tensors(LanguageModel& model, const SafetensorsFile& file,
                        const std::function<std::string(const std::string&)>& rename);

}  // namespace gdn2
