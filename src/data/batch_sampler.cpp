// Batches: the seeded, counter-based training sampler and the sequential held-out iterator.
#include <algorithm>

#include "gdn2/data/dataset.h"
#include "gdn2/error.h"

namespace gdn2 {

namespace {

uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// A uniform draw in [0, n) for row `row` of batch (seed, step): a hash of the three, so no state carries over.
uint64_t draw(uint64_t seed, uint64_t step, uint64_t row, uint64_t n) {
  const uint64_t r = splitmix64(splitmix64(splitmix64(seed) ^ step) ^ (row * 0xd1342543de82ef95ull));
  return static_cast<uint64_t>((static_cast<unsigned __int128>(r) * n) >> 64);  // bias < n / 2^64
}

void check_batch_shape(int64_t batch, int64_t seq_len) {
  GDN2_CHECK(batch >= 1 && seq_len >= 1, ValueError, "batch ", batch, " and seq_len ", seq_len, " must be >= 1");
  GDN2_CHECK(batch <= (int64_t{1} << 40) / seq_len, ValueError, "batch ", batch, " x seq_len ", seq_len, " is too large");
}

// Copies tokens [start, start + T + 1) of `s` into row `row` of inputs and targets.
void fill_row(const TokenShard& s, int64_t start, int64_t T, int64_t row, std::vector<int32_t>& window,
              int32_t* in, int32_t* tgt) {
  s.read(start, T + 1, window.data());
  std::copy(window.begin(), window.begin() + T, in + row * T);
  std::copy(window.begin() + 1, window.begin() + T + 1, tgt + row * T);
}

}  // namespace

TokenBatch TokenDataset::sample(uint64_t seed, uint64_t step, int64_t batch, int64_t seq_len) const {
  check_batch_shape(batch, seq_len);
  // Window starts per shard: size - T (a window needs T + 1 tokens); prefix sums locate a global draw.
  std::vector<uint64_t> ends;
  uint64_t total = 0;
  for (const TokenShard& s : train_) {
    total += s.size() > seq_len ? static_cast<uint64_t>(s.size() - seq_len) : 0;
    ends.push_back(total);
  }
  GDN2_CHECK(total > 0, ValueError, "token dataset: no train shard holds seq_len + 1 = ", seq_len + 1, " tokens");
  TokenBatch b{Tensor::empty({batch, seq_len}, DType::i32), Tensor::empty({batch, seq_len}, DType::i32)};
  int32_t* in = b.inputs.data<int32_t>();
  int32_t* tgt = b.targets.data<int32_t>();
  std::vector<int32_t> window(static_cast<size_t>(seq_len + 1));
  for (int64_t row = 0; row < batch; ++row) {
    const uint64_t g = draw(seed, step, static_cast<uint64_t>(row), total);
    const size_t k = static_cast<size_t>(std::upper_bound(ends.begin(), ends.end(), g) - ends.begin());
    const uint64_t start = g - (k == 0 ? 0 : ends[k - 1]);
    fill_row(train_[k], static_cast<int64_t>(start), seq_len, row, window, in, tgt);
  }
  return b;
}

EvalBatches::EvalBatches(TokenShard shard, int64_t batch, int64_t seq_len, int64_t max_batches)
    : shard_(std::move(shard)), batch_(batch), seq_len_(seq_len) {
  check_batch_shape(batch, seq_len);
  GDN2_CHECK(max_batches >= 0, ValueError, "max_batches ", max_batches, " is negative");
  windows_ = shard_.size() > 1 ? (shard_.size() - 1) / seq_len : 0;
  if (max_batches > 0 && max_batches < (windows_ + batch - 1) / batch) windows_ = max_batches * batch;  // no overflow
}

bool EvalBatches::next(TokenBatch& out) {
  if (next_window_ >= windows_) return false;
  const int64_t rows = std::min(batch_, windows_ - next_window_);
  out.inputs = Tensor::empty({rows, seq_len_}, DType::i32);
  out.targets = Tensor::empty({rows, seq_len_}, DType::i32);
  std::vector<int32_t> window(static_cast<size_t>(seq_len_ + 1));
  for (int64_t r = 0; r < rows; ++r)
    fill_row(shard_, (next_window_ + r) * seq_len_, seq_len_, r, window, out.inputs.data<int32_t>(),
             out.targets.data<int32_t>());
  next_window_ += rows;
  return true;
}

}  // namespace gdn2
