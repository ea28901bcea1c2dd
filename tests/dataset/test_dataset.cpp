// Tests of TokenDataset: opening a directory, the seeded batch sampler, the held-out split and eval batches.
#include <gtest/gtest.h>

#include <filesystem>
#include <set>

#include "dataset_fixture.h"
#include "gdn2/error.h"

namespace {

using gdn2_test::byte_documents;
using gdn2_test::byte_options;
using gdn2_test::synthetic_documents;
using gdn2_test::TempDir;

class Dataset : public ::testing::Test {
 protected:
  void SetUp() override {
    docs_ = synthetic_documents(300);
    stats_ = gdn2::data_prepare(docs_, gdn2::byte_encode, dir_.path(), byte_options(10, 4000));
  }
  std::vector<int32_t> all_train_tokens(const gdn2::TokenDataset& d) const {
    std::vector<int32_t> all;
    for (const auto& s : d.train_shards()) {
      const auto v = s.to_vector();
      all.insert(all.end(), v.begin(), v.end());
    }
    return all;
  }
  TempDir dir_;
  std::vector<std::string> docs_;
  gdn2::PrepareStats stats_;
};

bool same(const gdn2::Tensor& a, const gdn2::Tensor& b) {
  return a.shape() == b.shape() && a.dtype() == b.dtype() && std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

TEST_F(Dataset, OpensEveryShard) {
  const gdn2::TokenDataset d = gdn2::TokenDataset::open(dir_.path());
  EXPECT_GT(d.train_shards().size(), 3u);
  EXPECT_EQ(d.train_shards().size() + 1, stats_.files.size());
  EXPECT_EQ(d.train_tokens(), stats_.train_tokens);
  EXPECT_EQ(d.val_shard().size(), stats_.val_tokens);
  EXPECT_EQ(d.train_documents(), 270);
  EXPECT_EQ(d.val_shard().documents(), 30);
  EXPECT_EQ(d.vocab_size(), gdn2::kByteVocabSize);
  EXPECT_EQ(d.eos_id(), gdn2::kByteEosId);
  for (const auto& s : d.train_shards()) EXPECT_LE(s.size(), 4000);
}

TEST_F(Dataset, HeldOutSplitIsEveryTenthDocumentAndDisjointFromTrain) {
  const gdn2::TokenDataset d = gdn2::TokenDataset::open(dir_.path());
  const std::vector<std::string> train = byte_documents(all_train_tokens(d));
  const std::vector<std::string> val = byte_documents(d.val_shard().to_vector());
  ASSERT_EQ(train.size(), 270u);
  ASSERT_EQ(val.size(), 30u);
  std::vector<std::string> want_train, want_val;
  for (size_t i = 0; i < docs_.size(); ++i) (i % 10 == 9 ? want_val : want_train).push_back(docs_[i]);
  EXPECT_EQ(train, want_train);
  EXPECT_EQ(val, want_val);
  const std::set<std::string> train_set(train.begin(), train.end());
  for (const std::string& v : val) EXPECT_EQ(train_set.count(v), 0u) << v;
}

TEST_F(Dataset, SampleShapesAndShiftedTargets) {
  const gdn2::TokenDataset d = gdn2::TokenDataset::open(dir_.path());
  const gdn2::TokenBatch b = d.sample(42, 0, 8, 64);
  EXPECT_EQ(b.inputs.shape(), (gdn2::Shape{8, 64}));
  EXPECT_EQ(b.targets.shape(), (gdn2::Shape{8, 64}));
  EXPECT_EQ(b.inputs.dtype(), gdn2::DType::i32);
  EXPECT_EQ(b.targets.dtype(), gdn2::DType::i32);
  const int32_t* in = b.inputs.data<int32_t>();
  const int32_t* tg = b.targets.data<int32_t>();
  for (int r = 0; r < 8; ++r) {
    for (int t = 0; t + 1 < 64; ++t) EXPECT_EQ(in[r * 64 + t + 1], tg[r * 64 + t]);
    // The row is a contiguous window of one train shard.
    bool found = false;
    for (const auto& s : d.train_shards()) {
      const auto v = s.to_vector();
      for (size_t o = 0; !found && o + 65 <= v.size(); ++o)
        found = std::equal(in + r * 64, in + r * 64 + 64, v.begin() + o) && v[o + 64] == tg[r * 64 + 63];
    }
    EXPECT_TRUE(found) << "row " << r;
  }
}

TEST_F(Dataset, SampleIsAPureFunctionOfSeedAndStep) {
  const gdn2::TokenDataset d = gdn2::TokenDataset::open(dir_.path());
  const gdn2::TokenBatch a = d.sample(7, 3, 4, 32);
  d.sample(7, 99, 4, 32);  // no state carries over between calls
  const gdn2::TokenBatch b = d.sample(7, 3, 4, 32);
  EXPECT_TRUE(same(a.inputs, b.inputs));
  EXPECT_TRUE(same(a.targets, b.targets));
  const gdn2::TokenDataset reopened = gdn2::TokenDataset::open(dir_.path());  // a resumed run
  EXPECT_TRUE(same(a.inputs, reopened.sample(7, 3, 4, 32).inputs));
  EXPECT_FALSE(same(a.inputs, d.sample(7, 4, 4, 32).inputs));  // the next step differs
  EXPECT_FALSE(same(a.inputs, d.sample(8, 3, 4, 32).inputs));  // another seed differs
}

TEST_F(Dataset, StepsCoverTheTrainSplit) {
  const gdn2::TokenDataset d = gdn2::TokenDataset::open(dir_.path());
  std::set<int32_t> first_tokens;
  for (uint64_t step = 0; step < 200; ++step) {
    const gdn2::TokenBatch b = d.sample(1, step, 4, 16);
    for (int r = 0; r < 4; ++r) first_tokens.insert(b.inputs.data<int32_t>()[r * 16]);
  }
  EXPECT_GT(first_tokens.size(), 20u);  // draws spread over many positions, not one
}

TEST_F(Dataset, SampleRejectsBadShapes) {
  const gdn2::TokenDataset d = gdn2::TokenDataset::open(dir_.path());
  EXPECT_THROW(d.sample(0, 0, 0, 8), gdn2::ValueError);
  EXPECT_THROW(d.sample(0, 0, 2, 0), gdn2::ValueError);
  EXPECT_THROW(d.sample(0, 0, 2, 4000), gdn2::ValueError);  // no shard holds 4001 tokens
  EXPECT_NO_THROW(d.sample(0, 0, 2, 2000));
}

TEST_F(Dataset, EvalBatchesWalkTheHeldOutSplitInOrder) {
  const gdn2::TokenDataset d = gdn2::TokenDataset::open(dir_.path());
  const std::vector<int32_t> val = d.val_shard().to_vector();
  const int64_t T = 16, B = 5;
  gdn2::EvalBatches it = d.val_batches(B, T);
  const int64_t windows = (static_cast<int64_t>(val.size()) - 1) / T;
  EXPECT_EQ(it.num_windows(), windows);
  EXPECT_EQ(it.num_batches(), (windows + B - 1) / B);
  std::vector<int32_t> inputs, targets;
  gdn2::TokenBatch b;
  int64_t batches = 0;
  while (it.next(b)) {
    ++batches;
    EXPECT_EQ(b.inputs.size(1), T);
    EXPECT_LE(b.inputs.size(0), B);
    inputs.insert(inputs.end(), b.inputs.data<int32_t>(), b.inputs.data<int32_t>() + b.inputs.numel());
    targets.insert(targets.end(), b.targets.data<int32_t>(), b.targets.data<int32_t>() + b.targets.numel());
  }
  EXPECT_EQ(batches, it.num_batches());
  ASSERT_EQ(static_cast<int64_t>(inputs.size()), windows * T);
  EXPECT_TRUE(std::equal(inputs.begin(), inputs.end(), val.begin()));
  EXPECT_TRUE(std::equal(targets.begin(), targets.end(), val.begin() + 1));
  EXPECT_FALSE(it.next(b));
  it.reset();
  EXPECT_TRUE(it.next(b));
  gdn2::EvalBatches limited = d.val_batches(B, T, 2);
  EXPECT_EQ(limited.num_batches(), 2);
  EXPECT_EQ(d.val_batches(B, T, INT64_MAX).num_windows(), windows);  // a huge limit is no limit
  EXPECT_THROW(d.val_batches(0, T), gdn2::ValueError);
  EXPECT_THROW(d.val_batches(B, T, -1), gdn2::ValueError);
}

TEST(DatasetOpen, MissingDirectoryIsAnIoError) {
  TempDir dir;
  EXPECT_THROW(gdn2::TokenDataset::open(dir.file("none")), gdn2::IoError);
}

TEST(DatasetOpen, NoTrainShardOrNoValShardIsAFormatError) {
  TempDir dir;
  EXPECT_THROW(gdn2::TokenDataset::open(dir.path()), gdn2::FormatError);
  gdn2::shard_write(dir.file("train_000.bin"), std::vector<int32_t>{1, 2, 256}, 257, 256);
  EXPECT_THROW(gdn2::TokenDataset::open(dir.path()), gdn2::FormatError);  // an unfinished prepare
  gdn2::shard_write(dir.file("val.bin"), std::vector<int32_t>{3, 256}, 257, 256);
  EXPECT_NO_THROW(gdn2::TokenDataset::open(dir.path()));
}

TEST(DatasetOpen, ShardsThatDisagreeAreAFormatError) {
  TempDir dir;
  gdn2::shard_write(dir.file("train_000.bin"), std::vector<int32_t>{1, 2, 256}, 257, 256);
  gdn2::shard_write(dir.file("val.bin"), std::vector<int32_t>{3, 256}, 300, 256);
  EXPECT_THROW(gdn2::TokenDataset::open(dir.path()), gdn2::FormatError);
}

TEST(DatasetOpen, ACorruptShardIsAFormatError) {
  TempDir dir;
  gdn2::shard_write(dir.file("train_000.bin"), std::vector<int32_t>{1, 2, 256}, 257, 256);
  gdn2::shard_write(dir.file("val.bin"), std::vector<int32_t>{3, 256}, 257, 256);
  const std::string good = gdn2_test::read_file(dir.file("train_000.bin"));
  gdn2_test::write_file(dir.file("train_001.bin"), good.substr(0, good.size() - 1));
  EXPECT_THROW(gdn2::TokenDataset::open(dir.path()), gdn2::FormatError);
}

TEST(DatasetOpen, TrainShardsOrderByNumber) {
  TempDir dir;
  gdn2::shard_write(dir.file("train_1000.bin"), std::vector<int32_t>{2, 256}, 257, 256);
  gdn2::shard_write(dir.file("train_999.bin"), std::vector<int32_t>{1, 256}, 257, 256);
  gdn2::shard_write(dir.file("val.bin"), std::vector<int32_t>{}, 257, 256);
  gdn2_test::write_file(dir.file("train_notes.bin"), "ignored: not a shard name");
  const gdn2::TokenDataset d = gdn2::TokenDataset::open(dir.path());
  ASSERT_EQ(d.train_shards().size(), 2u);
  EXPECT_EQ(d.train_shards()[0].at(0), 1);
  EXPECT_EQ(d.train_shards()[1].at(0), 2);
}

TEST(DatasetNames, TrainShardNames) {
  EXPECT_EQ(gdn2::train_shard_name(0), "train_000.bin");
  EXPECT_EQ(gdn2::train_shard_name(42), "train_042.bin");
  EXPECT_EQ(gdn2::train_shard_name(1234), "train_1234.bin");
  EXPECT_THROW(gdn2::train_shard_name(-1), gdn2::ValueError);
}

}  // namespace
