// The training loop: a tiny model overfits a small corpus, resuming reproduces the same losses bit for bit,
// schedules have the documented shape, and a damaged trainer state is refused.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "../model/model_test_util.h"
#include "gdn2/data/shard.h"
#include "gdn2/train.h"

namespace gdn2 {
namespace {

// A dataset whose documents repeat a short phrase: easy to overfit.
std::string make_dataset(const std::string& root, int64_t vocab) {
  const std::string dir = root + "/data";
  std::filesystem::create_directories(dir);
  std::vector<int32_t> train, val;
  const std::vector<int32_t> phrase{3, 7, 1, 9, 4, 4, 2, 8, 5, 6, 11, 13};
  for (int rep = 0; rep < 200; ++rep) {
    for (int32_t t : phrase) train.push_back(t);
    train.push_back(0);  // eos
  }
  for (int rep = 0; rep < 20; ++rep) {
    for (int32_t t : phrase) val.push_back(t);
    val.push_back(0);
  }
  shard_write(dir + "/train_000.bin", train, static_cast<uint32_t>(vocab), 0);
  shard_write(dir + "/val.bin", val, static_cast<uint32_t>(vocab), 0);
  return dir;
}

TrainOptions small_options(const std::string& out) {
  TrainOptions o;
  o.out_dir = out;
  o.batch = 4;
  o.seq_len = 24;
  o.steps = 60;
  o.lr = 1e-2;
  o.warmup_steps = 5;
  o.eval_every = 20;
  o.eval_batches = 2;
  o.checkpoint_every = 20;
  o.progress = false;
  return o;
}

TEST(Trainer, TinyModelOverfits) {
  test::ScratchDir dir("overfit");
  ModelConfig c = test::tiny_config("GGA");
  c.initializer_range = 0.02;
  const TokenDataset data = TokenDataset::open(make_dataset(dir.path, c.vocab_size));
  LanguageModel m(c);
  m.init_random(1);
  const TrainResult r = train_model(m, data, small_options(dir.path + "/run"));
  ASSERT_EQ(r.steps_done, 60);
  EXPECT_GT(r.log.front().loss, 2.5);   // about ln(23) at the start
  EXPECT_LT(r.log.back().loss, 0.5);    // the phrase is learnt
  EXPECT_LT(r.final_val_loss, 0.5);
  EXPECT_TRUE(std::filesystem::exists(dir.path + "/run/loss.png"));
  EXPECT_TRUE(std::filesystem::exists(dir.path + "/run/model/model.safetensors"));
  EXPECT_TRUE(std::filesystem::exists(dir.path + "/run/train_log.jsonl"));
}

TEST(Trainer, ResumeReproducesLossesExactly) {
  test::ScratchDir dir("resume");
  const ModelConfig c = test::tiny_config("GKSW");
  const TokenDataset data = TokenDataset::open(make_dataset(dir.path, c.vocab_size));
  TrainOptions o = small_options(dir.path + "/straight");
  o.steps = 10;
  o.checkpoint_every = 3;
  o.accum = 2;
  LanguageModel a(c);
  a.init_random(2);
  const TrainResult straight = train_model(a, data, o);

  o.out_dir = dir.path + "/resumed";
  o.stop_after = 4;  // killed after step 4 (the checkpoint at step 4 is the stop's)
  LanguageModel b(c);
  b.init_random(2);
  const TrainResult first = train_model(b, data, o);
  ASSERT_EQ(first.steps_done, 4);
  o.stop_after = 0;
  LanguageModel fresh(c);  // a new process: weights come from the checkpoint
  const TrainResult second = train_model(fresh, data, o);
  ASSERT_EQ(second.steps_done, 10);
  ASSERT_EQ(second.log.size(), straight.log.size());
  for (size_t i = 0; i < straight.log.size(); ++i) {
    EXPECT_EQ(second.log[i].loss, straight.log[i].loss) << "step " << i + 1;
    EXPECT_EQ(second.log[i].grad_norm, straight.log[i].grad_norm) << "step " << i + 1;
  }
  EXPECT_EQ(second.final_val_loss, straight.final_val_loss);
}

TEST(Trainer, ResumeRefusesMismatchedOrDamagedState) {
  test::ScratchDir dir("damaged");
  const ModelConfig c = test::tiny_config("G");
  const TokenDataset data = TokenDataset::open(make_dataset(dir.path, c.vocab_size));
  TrainOptions o = small_options(dir.path + "/run");
  o.steps = 4;
  o.stop_after = 2;
  LanguageModel m(c);
  m.init_random(3);
  train_model(m, data, o);
  o.stop_after = 0;
  TrainOptions other = o;
  other.batch = 5;
  EXPECT_THROW(train_model(m, data, other), ValueError);
  const std::string state = dir.path + "/run/checkpoints/step_000002/trainer_state.json";
  ASSERT_TRUE(std::filesystem::exists(state));
  std::ofstream(state) << "{\"format\": \"gdn2-train-state-v1\", \"step\": ";
  EXPECT_THROW(train_model(m, data, o), FormatError);
  std::ofstream(dir.path + "/run/checkpoints/latest") << "../../etc\n";
  EXPECT_THROW(train_model(m, data, o), FormatError);
}

TEST(Trainer, Schedules) {
  TrainOptions o;
  o.lr = 1.0;
  o.min_lr_ratio = 0.1;
  o.warmup_steps = 10;
  EXPECT_DOUBLE_EQ(learning_rate(o, 5, 100), 0.5);
  EXPECT_DOUBLE_EQ(learning_rate(o, 10, 100), 1.0);
  EXPECT_NEAR(learning_rate(o, 100, 100), 0.1, 1e-12);
  EXPECT_GT(learning_rate(o, 40, 100), learning_rate(o, 60, 100));
  o.schedule = "wsd";
  EXPECT_DOUBLE_EQ(learning_rate(o, 50, 100), 1.0);
  EXPECT_DOUBLE_EQ(learning_rate(o, 80, 100), 1.0);
  EXPECT_NEAR(learning_rate(o, 90, 100), 0.55, 1e-12);
  EXPECT_NEAR(learning_rate(o, 100, 100), 0.1, 1e-12);
}

}  // namespace
}  // namespace gdn2
