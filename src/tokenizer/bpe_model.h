// The BPE model: vocab, ranked merges, and the merge loop that turns one pre-tokenized piece into ids.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace gdn2::tokenizer_detail {

struct MergeValue {
  int32_t rank;
  int32_t new_id;
};

// Open-addressing map (left id, right id) -> MergeValue.
class MergeTable {
 public:
  void reserve(size_t n);
  // Inserts or overwrites (a later duplicate merge replaces an earlier one, as in HF's HashMap).
  void insert(int32_t a, int32_t b, MergeValue v);
  const MergeValue* find(int32_t a, int32_t b) const {
    if (slots_.empty()) return nullptr;
    const uint64_t key = pack(a, b);
    for (size_t i = hash(key) & mask_;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.key == key) return &s.value;
      if (s.key == kEmpty) return nullptr;
    }
  }
  size_t size() const { return size_; }

 private:
  static constexpr uint64_t kEmpty = ~0ull;
  struct Slot {
    uint64_t key = kEmpty;
    MergeValue value{0, 0};
  };
  static uint64_t pack(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }
  static size_t hash(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    return static_cast<size_t>(k);
  }
  void grow();
  std::vector<Slot> slots_;
  size_t mask_ = 0;
  size_t size_ = 0;
};

struct Merge {
  int32_t left, right, rank;
};

struct BpeModel {
  std::unordered_map<std::string, int32_t> vocab;  // vocab-form token -> id
  std::vector<std::pair<std::string, int32_t>> vocab_in_order;  // as listed (for saving)
  MergeTable merges;
  std::vector<Merge> merge_list;  // effective merges in rank order (for saving)
  bool byte_level = false;        // pieces are raw bytes, each byte one initial symbol
  std::array<int32_t, 256> byte_ids{};  // byte_level: id of each byte's character, -1 if not in the vocab
  std::unordered_map<std::string, int32_t> raw_vocab;  // byte_level + ignore_merges: raw bytes -> id
  int32_t unk = -1;  // unk_token id, or -1
  bool fuse_unk = false;
  bool ignore_merges = false;

  // Appends the ids of one piece (raw bytes if byte_level, else text whose characters are vocab symbols).
  // Symbols missing from the vocab become `unk`, or are dropped when there is none (HF's behaviour).
  void tokenize(std::string_view piece, std::vector<int32_t>& out) const;

  // Applies the merges to a symbol sequence in place: always the lowest-ranked adjacent pair, leftmost first.
  void merge_symbols(std::vector<int32_t>& sym) const;
};

}  // namespace gdn2::tokenizer_detail
