// The BPE merge loop (quadratic scan for short pieces, heap + linked list for long ones) and the merge table.
#include "tokenizer/bpe_model.h"

#include <climits>
#include <queue>

#include "tokenizer/utf8.h"

namespace gdn2::tokenizer_detail {

void MergeTable::reserve(size_t n) {
  size_t cap = 16;
  while (cap < n * 2) cap <<= 1;
  if (cap <= slots_.size()) return;
  std::vector<Slot> old = std::move(slots_);
  slots_.assign(cap, Slot{});
  mask_ = cap - 1;
  size_ = 0;
  for (const Slot& s : old)
    if (s.key != kEmpty) insert(static_cast<int32_t>(s.key >> 32), static_cast<int32_t>(s.key & 0xffffffffu), s.value);
}

void MergeTable::grow() { reserve(slots_.empty() ? 16 : slots_.size()); }

void MergeTable::insert(int32_t a, int32_t b, MergeValue v) {
  if ((size_ + 1) * 2 > slots_.size()) grow();
  const uint64_t key = pack(a, b);
  for (size_t i = hash(key) & mask_;; i = (i + 1) & mask_) {
    Slot& s = slots_[i];
    if (s.key == key) {
      s.value = v;
      return;
    }
    if (s.key == kEmpty) {
      s.key = key;
      s.value = v;
      ++size_;
      return;
    }
  }
}

namespace {

constexpr size_t kShortWord = 48;

struct HeapEntry {
  int32_t rank;
  int32_t pos;
  int32_t new_id;
  bool operator>(const HeapEntry& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
};

}  // namespace

void BpeModel::merge_symbols(std::vector<int32_t>& sym) const {
  const size_t n = sym.size();
  if (n < 2) return;
  if (n <= kShortWord) {
    // ranks[i]: rank of the pair (sym[i], sym[i+1]), INT_MAX if none.
    int32_t ranks[kShortWord];
    int32_t news[kShortWord];
    size_t len = n;
    for (size_t i = 0; i + 1 < len; ++i) {
      const MergeValue* v = merges.find(sym[i], sym[i + 1]);
      ranks[i] = v ? v->rank : INT_MAX;
      news[i] = v ? v->new_id : -1;
    }
    while (len > 1) {
      size_t best = 0;
      for (size_t i = 1; i + 1 < len; ++i)
        if (ranks[i] < ranks[best]) best = i;
      if (ranks[best] == INT_MAX) break;
      sym[best] = news[best];
      for (size_t i = best + 1; i + 1 < len; ++i) {
        sym[i] = sym[i + 1];
        ranks[i] = ranks[i + 1];
        news[i] = news[i + 1];
      }
      --len;
      auto refresh = [&](size_t i) {
        const MergeValue* v = merges.find(sym[i], sym[i + 1]);
        ranks[i] = v ? v->rank : INT_MAX;
        news[i] = v ? v->new_id : -1;
      };
      if (best > 0) refresh(best - 1);
      if (best + 1 < len) refresh(best);
    }
    sym.resize(len);
    return;
  }
  // Long pieces: a min-heap of candidate merges over a doubly linked list of symbols.
  std::vector<int32_t> prev(n), next(n);
  std::vector<char> alive(n, 1);
  for (size_t i = 0; i < n; ++i) {
    prev[i] = static_cast<int32_t>(i) - 1;
    next[i] = i + 1 < n ? static_cast<int32_t>(i + 1) : -1;
  }
  std::priority_queue<HeapEntry, std::vector<HeapEntry>, std::greater<HeapEntry>> heap;
  for (size_t i = 0; i + 1 < n; ++i)
    if (const MergeValue* v = merges.find(sym[i], sym[i + 1]))
      heap.push({v->rank, static_cast<int32_t>(i), v->new_id});
  while (!heap.empty()) {
    const HeapEntry top = heap.top();
    heap.pop();
    if (!alive[top.pos]) continue;
    const int32_t nx = next[top.pos];
    if (nx < 0) continue;
    const MergeValue* v = merges.find(sym[top.pos], sym[nx]);
    if (v == nullptr || v->new_id != top.new_id) continue;  // stale entry
    sym[top.pos] = top.new_id;
    alive[nx] = 0;
    next[top.pos] = next[nx];
    if (next[nx] >= 0) prev[next[nx]] = top.pos;
    if (prev[top.pos] >= 0) {
      const int32_t p = prev[top.pos];
      if (const MergeValue* w = merges.find(sym[p], sym[top.pos])) heap.push({w->rank, p, w->new_id});
    }
    if (next[top.pos] >= 0) {
      if (const MergeValue* w = merges.find(sym[top.pos], sym[next[top.pos]]))
        heap.push({w->rank, top.pos, w->new_id});
    }
  }
  size_t k = 0;
  for (size_t i = 0; i < n; ++i)
    if (alive[i]) sym[k++] = sym[i];
  sym.resize(k);
}

void BpeModel::tokenize(std::string_view piece, std::vector<int32_t>& out) const {
  if (piece.empty()) return;
  if (ignore_merges) {
    if (byte_level) {
      auto it = raw_vocab.find(std::string(piece));
      if (it != raw_vocab.end()) {
        out.push_back(it->second);
        return;
      }
    } else {
      auto it = vocab.find(std::string(piece));
      if (it != vocab.end()) {
        out.push_back(it->second);
        return;
      }
    }
  }
  std::vector<int32_t> sym;
  sym.reserve(piece.size());
  bool last_unk = false;
  auto add = [&](int32_t id) {
    if (id >= 0) {
      sym.push_back(id);
      last_unk = false;
    } else if (unk >= 0) {
      if (!(fuse_unk && last_unk)) sym.push_back(unk);
      last_unk = true;
    }
  };
  if (byte_level) {
    for (char c : piece) add(byte_ids[static_cast<unsigned char>(c)]);
  } else {
    std::string ch;
    size_t i = 0;
    while (i < piece.size()) {
      const size_t b = i;
      utf8_next(piece, i);
      ch.assign(piece.data() + b, i - b);
      auto it = vocab.find(ch);
      add(it == vocab.end() ? -1 : it->second);
    }
  }
  merge_symbols(sym);
  out.insert(out.end(), sym.begin(), sym.end());
}

}  // namespace gdn2::tokenizer_detail
