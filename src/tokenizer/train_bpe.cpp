// Byte-level BPE training: parallel word counting, then merges driven by a lazy max-heap over incremental pair counts.
#include <omp.h>

#include <algorithm>
#include <queue>
#include <unordered_map>
#include <unordered_set>

#include "gdn2/error.h"
#include "gdn2/tokenizer.h"
#include "tokenizer/byte_unicode.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/utf8.h"

namespace gdn2 {

namespace {

using tokenizer_detail::AddedToken;
using tokenizer_detail::AddedTokenMatcher;
using tokenizer_detail::Regex;
using tokenizer_detail::Segment;
using tokenizer_detail::Span;

using WordCounts = std::unordered_map<std::string, int64_t>;

uint64_t pack(int32_t a, int32_t b) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
}
int32_t left_of(uint64_t p) { return static_cast<int32_t>(p >> 32); }
int32_t right_of(uint64_t p) { return static_cast<int32_t>(p & 0xffffffffu); }

// Counts GPT-2 pre-tokenizer pieces of every text, with the special tokens cut out first.
WordCounts count_words(const std::vector<std::string>& texts, const std::vector<AddedToken>& specials) {
  AddedTokenMatcher matcher;
  std::vector<std::string> pats;
  std::vector<int32_t> idx;
  for (size_t k = 0; k < specials.size(); ++k) {
    pats.push_back(specials[k].content);
    idx.push_back(static_cast<int32_t>(k));
  }
  matcher.build(pats, idx);
  const Regex gpt2(tokenizer_detail::kGpt2Pattern);

  const int nthreads = std::max(1, omp_get_max_threads());
  std::vector<WordCounts> local(static_cast<size_t>(nthreads));
  const auto n = static_cast<int64_t>(texts.size());
#pragma omp parallel num_threads(nthreads)
  {
    WordCounts& mine = local[static_cast<size_t>(omp_get_thread_num())];
    std::vector<Segment> segs;
    std::vector<Span> matches;
#pragma omp for schedule(dynamic, 1)
    for (int64_t i = 0; i < n; ++i) {
      const std::string_view text = texts[i];
      matcher.split(text, specials, segs);
      for (const Segment& s : segs) {
        if (s.token >= 0) continue;
        const std::string_view part = text.substr(s.begin, s.end - s.begin);
        matches.clear();
        gpt2.find_all(part, matches);
        // Isolated split: the matches and the gaps between them are the pieces.
        size_t prev = 0;
        auto count = [&](size_t b, size_t e) {
          if (e > b) ++mine[std::string(part.substr(b, e - b))];
        };
        for (const Span& m : matches) {
          count(prev, m.first);
          count(m.first, m.second);
          prev = m.second;
        }
        count(prev, part.size());
      }
    }
  }
  WordCounts total = std::move(local[0]);
  for (size_t t = 1; t < local.size(); ++t)
    for (auto& [w, c] : local[t]) total[w] += c;
  return total;
}

struct HeapEntry {
  int64_t count;
  uint64_t pair;
  // Max-heap on count; among equal counts the smallest pair comes first.
  bool operator<(const HeapEntry& o) const { return count != o.count ? count < o.count : pair > o.pair; }
};

}  // namespace

Tokenizer tokenizer_train_bpe(const std::vector<std::string>& texts, int32_t vocab_size,
                              const std::vector<std::string>& special_tokens) {
  const auto k = static_cast<int32_t>(special_tokens.size());
  std::unordered_set<std::string> special_set;
  std::vector<AddedToken> specials;
  for (const std::string& s : special_tokens) {
    GDN2_CHECK(!s.empty(), ValueError, "tokenizer_train_bpe: a special token is empty");
    GDN2_CHECK(tokenizer_detail::utf8_invalid_at(s) == tokenizer_detail::kValidUtf8, ValueError,
               "tokenizer_train_bpe: special token is not valid UTF-8");
    GDN2_CHECK(special_set.insert(s).second, ValueError, "tokenizer_train_bpe: special token '", s, "' given twice");
    for (int b = 0; b < 256; ++b)
      GDN2_CHECK(s != tokenizer_detail::byte_char_utf8(static_cast<unsigned char>(b)), ValueError,
                 "tokenizer_train_bpe: special token '", s, "' is the byte-level token of byte ", b);
    AddedToken a;
    a.id = static_cast<int32_t>(specials.size());
    a.content = s;
    a.special = true;
    a.normalized = false;
    specials.push_back(std::move(a));
  }
  GDN2_CHECK(vocab_size >= k + 256 && vocab_size <= tokenizer_detail::kMaxVocab, ValueError,
             "tokenizer_train_bpe: vocab_size ", vocab_size, " must lie in [", k + 256, ", ",
             tokenizer_detail::kMaxVocab, "] (", k, " special tokens + 256 bytes at least)");
  for (size_t i = 0; i < texts.size(); ++i) {
    const size_t bad = tokenizer_detail::utf8_invalid_at(texts[i]);
    GDN2_CHECK(bad == tokenizer_detail::kValidUtf8, ValueError, "tokenizer_train_bpe: text ", i,
               " is not valid UTF-8 (byte offset ", bad, ")");
  }

  // Words as symbol sequences; byte b is symbol k + b.
  WordCounts counts = count_words(texts, specials);
  std::vector<std::pair<std::string, int64_t>> sorted_words(counts.begin(), counts.end());
  counts.clear();
  std::sort(sorted_words.begin(), sorted_words.end());  // deterministic word order
  std::vector<std::vector<int32_t>> words(sorted_words.size());
  std::vector<int64_t> freq(sorted_words.size());
  for (size_t w = 0; w < sorted_words.size(); ++w) {
    freq[w] = sorted_words[w].second;
    for (char c : sorted_words[w].first) words[w].push_back(k + static_cast<unsigned char>(c));
  }
  sorted_words.clear();

  // token strings (raw bytes) by id, from k on
  std::vector<std::string> token_bytes;
  for (int b = 0; b < 256; ++b) token_bytes.emplace_back(1, static_cast<char>(b));
  auto bytes_of = [&](int32_t id) -> const std::string& { return token_bytes[static_cast<size_t>(id - k)]; };

  std::unordered_map<uint64_t, int64_t> pair_count;
  std::unordered_map<uint64_t, std::vector<int32_t>> where;
  for (size_t w = 0; w < words.size(); ++w) {
    const auto& s = words[w];
    for (size_t i = 0; i + 1 < s.size(); ++i) {
      const uint64_t p = pack(s[i], s[i + 1]);
      pair_count[p] += freq[w];
      auto& list = where[p];
      if (list.empty() || list.back() != static_cast<int32_t>(w)) list.push_back(static_cast<int32_t>(w));
    }
  }
  std::priority_queue<HeapEntry> heap;
  for (const auto& [p, c] : pair_count) heap.push({c, p});

  std::vector<std::pair<int32_t, int32_t>> merges;
  std::vector<int32_t> seen(words.size(), -1);
  std::vector<int32_t> merged;
  std::unordered_map<uint64_t, int64_t> fresh;  // pairs holding the new token, with their counts
  int32_t next_id = k + 256;
  while (next_id < vocab_size && !heap.empty()) {
    const HeapEntry top = heap.top();
    heap.pop();
    auto pc = pair_count.find(top.pair);
    const int64_t current = pc == pair_count.end() ? 0 : pc->second;
    if (current != top.count) {
      if (current > 0) heap.push({current, top.pair});
      continue;
    }
    if (current < 2) break;
    const int32_t a = left_of(top.pair), b = right_of(top.pair);
    std::string new_bytes = bytes_of(a) + bytes_of(b);
    if (special_set.count(tokenizer_detail::bytes_to_vocab_form(new_bytes))) {
      pair_count.erase(pc);  // would collide with a special token's name: never merge this pair
      continue;
    }
    const int32_t c = next_id++;
    merges.emplace_back(a, b);
    token_bytes.push_back(std::move(new_bytes));
    fresh.clear();

    std::vector<int32_t> affected = std::move(where[top.pair]);
    where.erase(top.pair);
    for (int32_t w : affected) {
      if (seen[w] == c) continue;
      seen[w] = c;
      std::vector<int32_t>& s = words[w];
      bool has = false;
      for (size_t i = 0; i + 1 < s.size() && !has; ++i) has = s[i] == a && s[i + 1] == b;
      if (!has) continue;
      const int64_t f = freq[w];
      for (size_t i = 0; i + 1 < s.size(); ++i) {
        auto it = pair_count.find(pack(s[i], s[i + 1]));
        if (it != pair_count.end()) it->second -= f;  // absent only for a pair dropped as a special's name
      }
      merged.clear();
      for (size_t i = 0; i < s.size();) {
        if (i + 1 < s.size() && s[i] == a && s[i + 1] == b) {
          merged.push_back(c);
          i += 2;
        } else {
          merged.push_back(s[i]);
          ++i;
        }
      }
      s.assign(merged.begin(), merged.end());
      for (size_t i = 0; i + 1 < s.size(); ++i) {
        const uint64_t p = pack(s[i], s[i + 1]);
        const int64_t now = (pair_count[p] += f);
        if (s[i] == c || s[i + 1] == c) {
          fresh[p] = now;
          auto& list = where[p];
          if (list.empty() || list.back() != w) list.push_back(w);
        }
      }
    }
    pair_count.erase(top.pair);
    for (const auto& [p, cnt] : fresh)
      if (cnt > 0) heap.push({cnt, p});
  }

  // Assemble the tokenizer.json and load it through the same path as a file.
  nlohmann::json vocab = nlohmann::json::object();
  for (const AddedToken& s : specials) vocab[s.content] = s.id;
  for (size_t i = 0; i < token_bytes.size(); ++i)
    vocab[tokenizer_detail::bytes_to_vocab_form(token_bytes[i])] = k + static_cast<int32_t>(i);
  nlohmann::json merge_json = nlohmann::json::array();
  for (const auto& [l, r] : merges)
    merge_json.push_back({tokenizer_detail::bytes_to_vocab_form(bytes_of(l)),
                          tokenizer_detail::bytes_to_vocab_form(bytes_of(r))});
  nlohmann::json added = nlohmann::json::array();
  for (const AddedToken& s : specials)
    added.push_back({{"id", s.id}, {"content", s.content}, {"single_word", false}, {"lstrip", false},
                     {"rstrip", false}, {"normalized", false}, {"special", true}});
  nlohmann::json root = {
      {"version", "1.0"},
      {"added_tokens", added},
      {"normalizer", nullptr},
      {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true},
                         {"use_regex", true}}},
      {"post_processor", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", false},
                          {"use_regex", true}}},
      {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}}},
      {"model", {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr},
                 {"continuing_subword_prefix", nullptr}, {"end_of_word_suffix", nullptr}, {"fuse_unk", false},
                 {"byte_fallback", false}, {"ignore_merges", false}, {"vocab", std::move(vocab)},
                 {"merges", std::move(merge_json)}}},
  };
  return Tokenizer(tokenizer_detail::load_tokenizer(root, "<trained>"));
}

}  // namespace gdn2
