// TokenDataset::open: finds train_*.bin and val.bin in a directory and checks that they agree.
#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "gdn2/data/dataset.h"
#include "gdn2/error.h"

namespace gdn2 {

std::string train_shard_name(int64_t index) {
  GDN2_CHECK(index >= 0, ValueError, "train shard index ", index, " is negative");
  char buf[40];
  std::snprintf(buf, sizeof(buf), "train_%03lld.bin", static_cast<long long>(index));
  return buf;
}

namespace {

bool is_train_name(const std::string& name) {
  if (name.size() <= 10 || name.rfind("train_", 0) != 0 || name.substr(name.size() - 4) != ".bin") return false;
  for (size_t i = 6; i < name.size() - 4; ++i)
    if (name[i] < '0' || name[i] > '9') return false;
  return true;
}

}  // namespace

TokenDataset TokenDataset::open(const std::string& dir, bool verify_checksum) {
  namespace fs = std::filesystem;
  std::error_code ec;
  GDN2_CHECK(fs::is_directory(dir, ec), IoError, "token dataset '", dir, "' is not a directory");
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (is_train_name(name)) names.push_back(name);
  }
  GDN2_CHECK(!ec, IoError, "token dataset '", dir, "': cannot list the directory: ", ec.message());
  std::sort(names.begin(), names.end(), [](const std::string& a, const std::string& b) {
    return a.size() != b.size() ? a.size() < b.size() : a < b;  // train_999 before train_1000
  });
  GDN2_CHECK(!names.empty(), FormatError, "token dataset '", dir, "' has no train_*.bin shard (run data prepare)");
  const fs::path val_path = fs::path(dir) / std::string(kValShardName);
  GDN2_CHECK(fs::exists(val_path, ec), FormatError, "token dataset '", dir, "' has no ", kValShardName,
             ": the data prepare that wrote it did not finish (run it again)");
  TokenDataset d;
  d.val_ = TokenShard::open(val_path.string(), verify_checksum);
  for (const std::string& name : names) {
    TokenShard s = TokenShard::open((fs::path(dir) / name).string(), verify_checksum);
    GDN2_CHECK(s.vocab_size() == d.val_.vocab_size() && s.eos_id() == d.val_.eos_id(), FormatError, "token dataset '",
               dir, "': ", name, " has vocab_size ", s.vocab_size(), " and eos_id ", s.eos_id(), ", but ",
               kValShardName, " has ", d.val_.vocab_size(), " and ", d.val_.eos_id());
    d.train_tokens_ += s.size();
    d.train_.push_back(std::move(s));
  }
  return d;
}

int64_t TokenDataset::train_documents() const {
  int64_t n = 0;
  for (const TokenShard& s : train_) n += s.documents();
  return n;
}

EvalBatches TokenDataset::val_batches(int64_t batch, int64_t seq_len, int64_t max_batches) const {
  return EvalBatches(val_, batch, seq_len, max_batches);
}

}  // namespace gdn2
