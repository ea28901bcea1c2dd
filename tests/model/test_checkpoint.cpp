// Checkpoints: exact round trip, and corrupt or mismatched checkpoints and configs get clear errors.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "gdn2/model/checkpoint.h"
#include "gdn2/safetensors.h"
#include "model/params.h"
#include "model_test_util.h"

namespace gdn2 {
namespace {

template <class E>
void expect_error(const std::function<void()>& f, const std::string& needle) {
  try {
    f();
    FAIL() << "no error; expected one mentioning '" << needle << "'";
  } catch (const E& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(Checkpoint, RoundTripIsExact) {
  test::ScratchDir dir("roundtrip");
  const ModelConfig c = test::tiny_config("GKDSAW");
  LanguageModel m(c);
  m.init_random(5);
  model_save(m, dir.path + "/ckpt");
  auto back = model_load(dir.path + "/ckpt");
  EXPECT_EQ(back->config().to_json_text(), c.to_json_text());
  for (const Param& p : m.params().all()) {
    const Tensor& q = back->params().at(p.spec.name).value;
    ASSERT_EQ(std::memcmp(p.value.raw(), q.raw(), p.value.nbytes()), 0) << p.spec.name;
  }
  const Tensor ids = test::random_ids(1, 7, c.vocab_size, 1);
  EXPECT_EQ(rel_rms_error(m.forward_logits(ids), back->forward_logits(ids)), 0.0);
}

TEST(Checkpoint, CorruptFilesGetClearErrors) {
  test::ScratchDir dir("corrupt");
  const ModelConfig c = test::tiny_config("GA");
  LanguageModel m(c);
  m.init_random(5);
  const std::string ck = dir.path + "/ckpt";
  model_save(m, ck);
  const std::string weights = ck + "/model.safetensors";
  std::string good;
  {
    std::ifstream f(weights, std::ios::binary);
    good.assign((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  }
  // Truncated weights.
  std::ofstream(weights, std::ios::binary) << good.substr(0, good.size() / 2);
  expect_error<FormatError>([&] { model_load(ck); }, "model.safetensors");
  // A missing tensor, a wrong shape, a NaN.
  const SafetensorsFile f = SafetensorsFile::from_bytes(good);
  auto rewrite = [&](const std::string& drop, const std::string& bad_shape, const std::string& nan) {
    std::vector<std::pair<std::string, Tensor>> t;
    for (const std::string& n : f.names()) {
      if (n == drop) continue;
      Tensor x = f.get(n).clone();
      if (n == bad_shape) x = Tensor::zeros({3}, DType::f32);
      if (n == nan) x.data<float>()[0] = std::nanf("");
      t.emplace_back(n, x);
    }
    safetensors_write(weights, t);
  };
  rewrite("model.norm.weight", "", "");
  expect_error<FormatError>([&] { model_load(ck); }, "no tensor 'model.norm.weight'");
  rewrite("", "model.norm.weight", "");
  expect_error<FormatError>([&] { model_load(ck); }, "the model expects [16]");
  rewrite("", "", "model.layers.0.linear_attn.A_log");
  expect_error<FormatError>([&] { model_load(ck); }, "NaN");
  // An unexpected tensor (config and weights disagree).
  std::vector<std::pair<std::string, Tensor>> extra;
  for (const std::string& n : f.names()) extra.emplace_back(n, f.get(n));
  extra.emplace_back("model.layers.9.mlp.up_proj.weight", Tensor::zeros({2, 2}, DType::f32));
  safetensors_write(weights, extra);
  expect_error<FormatError>([&] { model_load(ck); }, "unexpected tensor");
  // Bad configs.
  auto config_error = [&](const std::string& text, const std::string& needle) {
    std::ofstream(ck + "/config.json") << text;
    expect_error<FormatError>([&] { model_load(ck); }, needle);
  };
  config_error("{not json", "not valid JSON");
  config_error("[1, 2]", "must be a JSON object");
  config_error("{\"layer_types\": [\"gdn3\"]}", "unknown layer type 'gdn3'");
  config_error("{\"hidden_size\": \"big\", \"layer_types\": [\"gdn2\"]}", "'hidden_size' must be an integer");
  config_error("{\"hidden_size\": -4, \"layer_types\": [\"gdn2\"]}", "'hidden_size' must be in [1");
  config_error("{\"linear_num_key_heads\": 3, \"linear_num_value_heads\": 4, \"layer_types\": [\"gdn2\"]}",
               "multiple of linear_num_key_heads");
  config_error("{\"vocab_size\": 16777216, \"hidden_size\": 65536, \"layer_types\": [\"gdn2\", \"gdn2\"]}", "parameters");
  config_error("{\"num_hidden_layers\": 3, \"layer_types\": [\"gdn2\"]}", "num_hidden_layers is 3");
  expect_error<IoError>([&] { model_load(dir.path + "/nowhere"); }, "cannot open config");
}

TEST(Checkpoint, ConfigRoundTripAndPattern) {
  const ModelConfig c = ModelConfig::from_json_text(
      "{\"layer_pattern\": \"GGGA\", \"num_hidden_layers\": 8, \"hidden_size\": 64, \"vocab_size\": 100}", "t");
  ASSERT_EQ(c.num_layers(), 8);
  EXPECT_EQ(c.layers[3], LayerKind::attention);
  EXPECT_EQ(c.layers[4], LayerKind::gdn2);
  const ModelConfig d = ModelConfig::from_json_text(c.to_json_text(), "t2");
  EXPECT_EQ(d.to_json_text(), c.to_json_text());
  EXPECT_EQ(d.parameter_count(), c.parameter_count());
}

}  // namespace
}  // namespace gdn2
