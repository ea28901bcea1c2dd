// Tests of data_prepare: thread-count invariance, sharding, stale files, and every way an encoder can go wrong.
#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>

#include "dataset_fixture.h"
#include "gdn2/error.h"

namespace {

using gdn2_test::byte_options;
using gdn2_test::read_file;
using gdn2_test::synthetic_documents;
using gdn2_test::TempDir;

TEST(DataPrepare, SameBytesForAnyThreadCount) {
  const std::vector<std::string> docs = synthetic_documents(2500);  // more than one encoding block
  TempDir one, two;
  gdn2::PrepareOptions o = byte_options(50, 20000);
  o.threads = 1;
  const gdn2::PrepareStats a = gdn2::data_prepare(docs, gdn2::byte_encode, one.path(), o);
  o.threads = 2;
  const gdn2::PrepareStats b = gdn2::data_prepare(docs, gdn2::byte_encode, two.path(), o);
  ASSERT_EQ(one.entries(), two.entries());
  for (const std::string& name : one.entries()) EXPECT_EQ(read_file(one.file(name)), read_file(two.file(name))) << name;
  EXPECT_EQ(a.train_tokens, b.train_tokens);
  EXPECT_EQ(a.documents, 2500);
  EXPECT_EQ(a.val_documents, 50);
  EXPECT_EQ(a.train_documents, 2450);
}

TEST(DataPrepare, StatsCountTokensWithEos) {
  TempDir dir;
  const std::vector<std::string> docs = {"ab", "cde", "f", "gh"};
  const gdn2::PrepareStats s = gdn2::data_prepare(docs, gdn2::byte_encode, dir.path(), byte_options(2, 100));
  EXPECT_EQ(s.train_documents, 2);  // documents 0 and 2
  EXPECT_EQ(s.val_documents, 2);    // documents 1 and 3
  EXPECT_EQ(s.train_tokens, 3 + 2);
  EXPECT_EQ(s.val_tokens, 4 + 3);
  EXPECT_EQ(dir.entries(), (std::vector<std::string>{"train_000.bin", "val.bin"}));
  const gdn2::TokenDataset d = gdn2::TokenDataset::open(dir.path());
  EXPECT_EQ(d.train_shards()[0].to_vector(), (std::vector<int32_t>{'a', 'b', 256, 'f', 256}));
  EXPECT_EQ(d.val_shard().to_vector(), (std::vector<int32_t>{'c', 'd', 'e', 256, 'g', 'h', 256}));
}

TEST(DataPrepare, DocumentsAreNeverSplitAcrossShards) {
  TempDir dir;
  const std::vector<std::string> docs = {"aaaa", "bbbbbbbbbbbb", "cc", "dd"};  // 5, 13, 3, 3 tokens with eos
  const gdn2::PrepareStats s = gdn2::data_prepare(docs, gdn2::byte_encode, dir.path(), byte_options(0, 6));
  EXPECT_EQ(s.files.size(), 4u);  // [aaaa], [bbbbbbbbbbbb] (longer than a shard: alone), [cc dd], val
  const gdn2::TokenDataset d = gdn2::TokenDataset::open(dir.path());
  ASSERT_EQ(d.train_shards().size(), 3u);
  EXPECT_EQ(d.train_shards()[0].size(), 5);
  EXPECT_EQ(d.train_shards()[1].size(), 13);
  EXPECT_EQ(d.train_shards()[2].size(), 6);
  EXPECT_EQ(d.val_shard().size(), 0);  // val_every 0: nothing held out
}

TEST(DataPrepare, NoDocumentsGivesEmptyShards) {
  TempDir dir;
  gdn2::data_prepare({}, gdn2::byte_encode, dir.path(), byte_options());
  const gdn2::TokenDataset d = gdn2::TokenDataset::open(dir.path());
  EXPECT_EQ(d.train_tokens(), 0);
  EXPECT_THROW(d.sample(0, 0, 1, 4), gdn2::ValueError);
}

TEST(DataPrepare, RemovesStaleShardsOfAnEarlierRun) {
  TempDir dir;
  gdn2::data_prepare(synthetic_documents(200), gdn2::byte_encode, dir.path(), byte_options(10, 500));
  EXPECT_GT(dir.entries().size(), 5u);
  gdn2::data_prepare(synthetic_documents(3), gdn2::byte_encode, dir.path(), byte_options(10, 500));
  EXPECT_EQ(dir.entries(), (std::vector<std::string>{"train_000.bin", "val.bin"}));
}

TEST(DataPrepare, CreatesTheOutputDirectory) {
  TempDir dir;
  const std::string out = dir.file("a/b");
  gdn2::data_prepare({"x"}, gdn2::byte_encode, out, byte_options());
  EXPECT_NO_THROW(gdn2::TokenDataset::open(out));
}

TEST(DataPrepare, BadOptionsAreValueErrors) {
  TempDir dir;
  gdn2::PrepareOptions o = byte_options();
  o.eos_id = o.vocab_size;
  EXPECT_THROW(gdn2::data_prepare({"x"}, gdn2::byte_encode, dir.path(), o), gdn2::ValueError);
  o = byte_options();
  o.vocab_size = 0;
  EXPECT_THROW(gdn2::data_prepare({"x"}, gdn2::byte_encode, dir.path(), o), gdn2::ValueError);
  o = byte_options();
  o.shard_tokens = 0;
  EXPECT_THROW(gdn2::data_prepare({"x"}, gdn2::byte_encode, dir.path(), o), gdn2::ValueError);
  o = byte_options();
  o.val_every = -1;
  EXPECT_THROW(gdn2::data_prepare({"x"}, gdn2::byte_encode, dir.path(), o), gdn2::ValueError);
  EXPECT_THROW(gdn2::data_prepare({"x"}, gdn2::EncodeFn(), dir.path(), byte_options()), gdn2::ValueError);
  EXPECT_TRUE(dir.entries().empty());
}

// After a failed run the directory holds no val.bin, so it cannot be mistaken for a finished dataset.
void expect_unfinished(const TempDir& dir) {
  for (const std::string& e : dir.entries()) EXPECT_NE(e, "val.bin");
  EXPECT_THROW(gdn2::TokenDataset::open(dir.path()), gdn2::FormatError);
}

TEST(DataPrepare, IdOutsideTheVocabNamesTheDocument) {
  TempDir dir;
  gdn2::data_prepare(synthetic_documents(50), gdn2::byte_encode, dir.path(), byte_options());  // an earlier dataset
  const gdn2::EncodeFn bad = [](std::string_view text) {
    std::vector<int32_t> ids = gdn2::byte_encode(text);
    if (text.find("Document 17:") == 0) ids.push_back(300);
    return ids;
  };
  try {
    gdn2::data_prepare(synthetic_documents(40), bad, dir.path(), byte_options());
    FAIL() << "no ValueError";
  } catch (const gdn2::ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("document 17"), std::string::npos) << e.what();
  }
  expect_unfinished(dir);
}

TEST(DataPrepare, EncoderMustNotEmitEos) {
  TempDir dir;
  const gdn2::EncodeFn bad = [](std::string_view) { return std::vector<int32_t>{65, 256, 66}; };
  EXPECT_THROW(gdn2::data_prepare({"x"}, bad, dir.path(), byte_options()), gdn2::ValueError);
  expect_unfinished(dir);
}

TEST(DataPrepare, EncoderExceptionsPassThroughUnchanged) {
  TempDir dir;
  std::atomic<int> calls{0};
  const gdn2::EncodeFn throwing = [&calls](std::string_view text) {
    calls.fetch_add(1);
    if (text.find("Document 5:") == 0) throw std::runtime_error("encoder broke");
    return gdn2::byte_encode(text);
  };
  gdn2::PrepareOptions o = byte_options();
  o.threads = 2;
  EXPECT_THROW(gdn2::data_prepare(synthetic_documents(30), throwing, dir.path(), o), std::runtime_error);
  EXPECT_GT(calls.load(), 0);
  expect_unfinished(dir);
}

TEST(ByteEncode, BytesAreIds) {
  EXPECT_EQ(gdn2::byte_encode("A\xff"), (std::vector<int32_t>{65, 255}));
  EXPECT_TRUE(gdn2::byte_encode("").empty());
}

}  // namespace
