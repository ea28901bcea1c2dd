// A token dataset: the train and held-out shards of one directory, a seeded batch sampler and an eval iterator.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "gdn2/data/shard.h"
#include "gdn2/tensor.h"

namespace gdn2 {

// The directory layout data_prepare writes: train_000.bin, train_001.bin, ... and val.bin (the held-out split).
inline constexpr std::string_view kValShardName = "val.bin";
std::string train_shard_name(int64_t index);  // "train_000.bin"; more digits past 999

// inputs and targets are I32 [B, T]; targets[b, t] = the token after inputs[b, t] in the shard.
struct TokenBatch {
  Tensor inputs;
  Tensor targets;
};

// Sequential batches over one shard for evaluation: windows [k*T, k*T + T + 1) for k = 0, 1, ... (non-overlapping
// inputs, every token but the last one predicted once), B windows a batch, the last batch possibly smaller.
class EvalBatches {
 public:
  // ValueError unless batch >= 1 and seq_len >= 1. max_batches > 0 stops after that many batches.
  EvalBatches(TokenShard shard, int64_t batch, int64_t seq_len, int64_t max_batches = 0);
  int64_t num_windows() const { return windows_; }
  int64_t num_batches() const { return (windows_ + batch_ - 1) / batch_; }
  bool next(TokenBatch& out);  // false at the end
  void reset() { next_window_ = 0; }

 private:
  TokenShard shard_;
  int64_t batch_, seq_len_, windows_, next_window_ = 0;
};

class TokenDataset {
 public:
  // Opens every train_*.bin (sorted by name) and val.bin in `dir`. IoError when `dir` is not a directory;
  // FormatError when there is no train shard, no val.bin (an unfinished data_prepare), a bad shard, or shards
  // that disagree on vocab_size or eos_id.
  static TokenDataset open(const std::string& dir, bool verify_checksum = true);

  const std::vector<TokenShard>& train_shards() const { return train_; }
  const TokenShard& val_shard() const { return val_; }
  int64_t train_tokens() const { return train_tokens_; }
  int64_t train_documents() const;
  uint32_t vocab_size() const { return val_.vocab_size(); }
  uint32_t eos_id() const { return val_.eos_id(); }

  // The training batch for (seed, step): B windows of T + 1 consecutive tokens, each drawn uniformly over every
  // window start of every train shard (windows may cross document boundaries, never shard boundaries). A pure
  // function of (seed, step, batch, seq_len) and the shards: resuming at a step reproduces its batches.
  // ValueError unless batch >= 1, seq_len >= 1 and some train shard holds at least seq_len + 1 tokens.
  TokenBatch sample(uint64_t seed, uint64_t step, int64_t batch, int64_t seq_len) const;
  // The held-out split in order (see EvalBatches).
  EvalBatches val_batches(int64_t batch, int64_t seq_len, int64_t max_batches = 0) const;

 private:
  std::vector<TokenShard> train_;
  TokenShard val_;
  int64_t train_tokens_ = 0;
};

}  // namespace gdn2
