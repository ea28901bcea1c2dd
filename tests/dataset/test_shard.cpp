// Tests of token shards: u16/u32 round trips, strict validation of corrupted files, no partial file on failure.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <random>

#include "core/temp_dir.h"
#include "gdn2/data/shard.h"
#include "gdn2/error.h"

namespace {

using gdn2_test::read_file;
using gdn2_test::TempDir;
using gdn2_test::write_file;

std::vector<int32_t> random_tokens(size_t n, uint32_t vocab, uint32_t eos, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<int32_t> t(n);
  for (size_t i = 0; i < n; ++i) t[i] = static_cast<int32_t>(rng() % vocab);
  t[n / 3] = static_cast<int32_t>(eos);
  t[n - 1] = static_cast<int32_t>(eos);
  return t;
}

int64_t count_of(const std::vector<int32_t>& t, int32_t v) { return std::count(t.begin(), t.end(), v); }

void round_trip(uint32_t vocab, uint32_t eos, uint32_t want_bytes) {
  TempDir dir;
  const std::string path = dir.file("s.bin");
  const std::vector<int32_t> tokens = random_tokens(1000, vocab, eos, vocab);
  gdn2::shard_write(path, tokens, vocab, eos);
  EXPECT_EQ(read_file(path).size(), gdn2::kShardHeaderBytes + tokens.size() * want_bytes);
  const gdn2::TokenShard s = gdn2::TokenShard::open(path);
  EXPECT_EQ(s.header().token_bytes, want_bytes);
  EXPECT_EQ(s.size(), 1000);
  EXPECT_EQ(s.vocab_size(), vocab);
  EXPECT_EQ(s.eos_id(), eos);
  EXPECT_EQ(s.documents(), count_of(tokens, static_cast<int32_t>(eos)));
  EXPECT_EQ(s.to_vector(), tokens);
  EXPECT_EQ(s.at(999), tokens[999]);
  std::vector<int32_t> part(10);
  s.read(500, 10, part.data());
  EXPECT_TRUE(std::equal(part.begin(), part.end(), tokens.begin() + 500));
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"s.bin"});
}

TEST(TokenShard, RoundTripU16) { round_trip(257, 256, 2); }
TEST(TokenShard, RoundTripU16AtTheLargestVocab) { round_trip(65536, 0, 2); }
TEST(TokenShard, RoundTripU32) { round_trip(65537, 65536, 4); }
TEST(TokenShard, RoundTripU32LargeIds) { round_trip(1u << 24, 7, 4); }

TEST(TokenShard, EmptyShardIsValid) {
  TempDir dir;
  gdn2::shard_write(dir.file("e.bin"), std::vector<int32_t>{}, 300, 2);
  const gdn2::TokenShard s = gdn2::TokenShard::open(dir.file("e.bin"));
  EXPECT_EQ(s.size(), 0);
  EXPECT_EQ(s.documents(), 0);
  EXPECT_TRUE(s.to_vector().empty());
}

TEST(TokenShard, ReadOutsideTheShardThrows) {
  TempDir dir;
  gdn2::shard_write(dir.file("s.bin"), std::vector<int32_t>{1, 2, 3}, 10, 0);
  const gdn2::TokenShard s = gdn2::TokenShard::open(dir.file("s.bin"));
  int32_t out[4];
  EXPECT_THROW(s.at(3), gdn2::ValueError);
  EXPECT_THROW(s.at(-1), gdn2::ValueError);
  EXPECT_THROW(s.read(1, 3, out), gdn2::ValueError);
  EXPECT_THROW(s.read(-1, 1, out), gdn2::ValueError);
  EXPECT_NO_THROW(s.read(3, 0, out));
}

TEST(TokenShard, WriterRejectsBadInputAndLeavesNoFile) {
  TempDir dir;
  const std::string path = dir.file("bad.bin");
  EXPECT_THROW(gdn2::shard_write(path, std::vector<int32_t>{1, 10}, 10, 0), gdn2::ValueError);  // id == vocab
  EXPECT_THROW(gdn2::shard_write(path, std::vector<int32_t>{-1}, 10, 0), gdn2::ValueError);
  EXPECT_THROW(gdn2::shard_write(path, std::vector<int32_t>{1}, 10, 10), gdn2::ValueError);  // eos == vocab
  EXPECT_THROW(gdn2::shard_write(path, std::vector<int32_t>{0}, 0, 0), gdn2::ValueError);
  EXPECT_THROW(gdn2::shard_write(path, std::vector<int32_t>{0}, 0x80000000u, 0), gdn2::ValueError);
  EXPECT_TRUE(dir.entries().empty());
}

TEST(TokenShard, FailedWriteKeepsTheOldFile) {
  TempDir dir;
  const std::string path = dir.file("s.bin");
  gdn2::shard_write(path, std::vector<int32_t>{1, 2, 0}, 10, 0);
  const std::string before = read_file(path);
  EXPECT_THROW(gdn2::shard_write(path, std::vector<int32_t>{1, 99}, 10, 0), gdn2::ValueError);
  EXPECT_EQ(read_file(path), before);
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"s.bin"});
}

TEST(TokenShard, MissingFileIsAnIoError) {
  TempDir dir;
  EXPECT_THROW(gdn2::TokenShard::open(dir.file("none.bin")), gdn2::IoError);
}

// A valid shard's bytes, to corrupt: vocab 300 (u16), eos 299, tokens 0..9 then eos.
class CorruptShard : public ::testing::Test {
 protected:
  void SetUp() override {
    std::vector<int32_t> t;
    for (int i = 0; i < 10; ++i) t.push_back(i);
    t.push_back(299);
    gdn2::shard_write(dir_.file("good.bin"), t, 300, 299);
    bytes_ = read_file(dir_.file("good.bin"));
  }
  // Writes `bytes` and expects FormatError mentioning `what` (and the file name).
  void expect_bad(const std::string& bytes, const std::string& what, bool verify = true) {
    const std::string path = dir_.file("bad.bin");
    write_file(path, bytes);
    try {
      gdn2::TokenShard::open(path, verify);
      FAIL() << "no FormatError for: " << what;
    } catch (const gdn2::FormatError& e) {
      EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("bad.bin"), std::string::npos) << e.what();
    }
  }
  template <class T>
  std::string patched(size_t offset, T value) const {
    std::string b = bytes_;
    std::memcpy(b.data() + offset, &value, sizeof(T));
    return b;
  }
  // Patches token i of the payload (u16) and fixes the checksum so that only the id is wrong.
  std::string with_token(size_t i, uint16_t v, bool fix_checksum) const {
    std::string b = patched<uint16_t>(gdn2::kShardHeaderBytes + 2 * i, v);
    if (fix_checksum) {
      const uint64_t sum = gdn2::fnv1a64(b.data() + gdn2::kShardHeaderBytes, b.size() - gdn2::kShardHeaderBytes);
      std::memcpy(b.data() + 40, &sum, 8);
    }
    return b;
  }
  TempDir dir_;
  std::string bytes_;
};

TEST_F(CorruptShard, TheGoodOneOpens) { EXPECT_EQ(gdn2::TokenShard::open(dir_.file("good.bin")).size(), 11); }
TEST_F(CorruptShard, EmptyFile) { expect_bad("", "shorter than"); }
TEST_F(CorruptShard, TruncatedHeader) { expect_bad(bytes_.substr(0, 40), "shorter than"); }
TEST_F(CorruptShard, TruncatedPayload) { expect_bad(bytes_.substr(0, bytes_.size() - 1), "payload is"); }
TEST_F(CorruptShard, TruncatedByOneToken) { expect_bad(bytes_.substr(0, bytes_.size() - 2), "payload is"); }
TEST_F(CorruptShard, TrailingBytes) { expect_bad(bytes_ + std::string(2, '\0'), "payload is"); }
TEST_F(CorruptShard, BadMagic) { expect_bad(patched<char>(0, 'X'), "bad magic"); }
TEST_F(CorruptShard, WrongVersion) { expect_bad(patched<uint32_t>(8, 2), "format version 2"); }
TEST_F(CorruptShard, WrongTokenWidth) { expect_bad(patched<uint32_t>(12, 4), "token width 4"); }
TEST_F(CorruptShard, CountLargerThanTheFile) { expect_bad(patched<uint64_t>(16, 12), "header says 12 tokens"); }
TEST_F(CorruptShard, HugeCountDoesNotOverflow) { expect_bad(patched<uint64_t>(16, ~uint64_t{0} / 2 + 1), "tokens"); }
TEST_F(CorruptShard, DocumentCountMismatch) { expect_bad(patched<uint64_t>(24, 2), "documents"); }
TEST_F(CorruptShard, ZeroVocab) { expect_bad(patched<uint32_t>(32, 0), "vocab_size 0"); }
TEST_F(CorruptShard, EosNotBelowVocab) { expect_bad(patched<uint32_t>(36, 300), "eos_id 300"); }
TEST_F(CorruptShard, ReservedBytesNotZero) { expect_bad(patched<uint8_t>(60, 1), "reserved"); }
TEST_F(CorruptShard, TokenIdNotBelowVocab) { expect_bad(with_token(3, 300, true), "token 3 is 300"); }
TEST_F(CorruptShard, TokenIdNotBelowVocabEvenUnchecked) { expect_bad(with_token(3, 65535, false), "token 3", false); }

TEST_F(CorruptShard, ChecksumMismatch) {
  const std::string b = with_token(4, 7, false);  // still a valid id: only the checksum can tell
  expect_bad(b, "checksum");
  write_file(dir_.file("unchecked.bin"), b);
  EXPECT_EQ(gdn2::TokenShard::open(dir_.file("unchecked.bin"), /*verify_checksum=*/false).at(4), 7);
}

TEST_F(CorruptShard, ChecksumFieldCorrupted) { expect_bad(patched<uint64_t>(40, 12345), "checksum"); }

}  // namespace

namespace {

// Random damage to a valid shard: open either succeeds with ids below the vocab or throws FormatError (under
// ASan in the debug preset, any read outside the file would also fail the test).
TEST(TokenShardFuzz, RandomDamageIsAFormatErrorOrStillValid) {
  TempDir dir;
  std::vector<int32_t> t;
  for (int i = 0; i < 64; ++i) t.push_back(i % 5 == 4 ? 299 : i);
  gdn2::shard_write(dir.file("good.bin"), t, 300, 299);
  const std::string good = read_file(dir.file("good.bin"));
  std::mt19937 rng(123);
  int errors = 0;
  for (int trial = 0; trial < 2000; ++trial) {
    std::string b = good;
    const int kind = trial % 3;
    if (kind == 0) {
      b[rng() % b.size()] = static_cast<char>(rng());
    } else if (kind == 1) {
      b.resize(rng() % b.size());
    } else {
      for (int k = 0; k < 4; ++k) b[rng() % 64] = static_cast<char>(rng());  // the header only
    }
    const std::string path = dir.file("f" + std::to_string(trial) + ".bin");  // fresh files: truncating is slow
    write_file(path, b);
    try {
      const gdn2::TokenShard s = gdn2::TokenShard::open(path, trial % 2 == 0);
      for (int32_t v : s.to_vector()) ASSERT_LT(static_cast<uint32_t>(v), s.vocab_size());
    } catch (const gdn2::FormatError&) {
      ++errors;
    }
    std::filesystem::remove(path);
  }
  EXPECT_GT(errors, 1000);
}

}  // namespace
