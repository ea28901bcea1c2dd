// gdn2::Tokenizer: the encode pipeline (added tokens, normalizer, pre-tokenizer, BPE with a word cache) and decode.
#include "gdn2/tokenizer.h"

#include <omp.h>

#include <exception>
#include <fstream>
#include <sstream>

#include "gdn2/atomic_file.h"
#include "gdn2/error.h"
#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/utf8.h"

namespace gdn2 {

namespace tokenizer_detail {

namespace {

struct SvHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

// piece bytes -> ids, for one encode call or one thread of a batch.
class WordCache {
 public:
  static constexpr size_t kMaxPiece = 256;      // longer pieces are not cached (as HF)
  static constexpr size_t kMaxEntries = 1 << 20;

  template <class F>
  void ids(std::string_view piece, std::vector<int32_t>& out, F&& compute) {
    if (piece.size() > kMaxPiece) {
      compute(piece, out);
      return;
    }
    auto it = map_.find(piece);
    if (it != map_.end()) {
      out.insert(out.end(), pool_.begin() + it->second.first, pool_.begin() + it->second.first + it->second.second);
      return;
    }
    const size_t before = out.size();
    compute(piece, out);
    if (map_.size() >= kMaxEntries) {
      map_.clear();
      pool_.clear();
    }
    const auto off = static_cast<uint32_t>(pool_.size());
    pool_.insert(pool_.end(), out.begin() + static_cast<ptrdiff_t>(before), out.end());
    map_.emplace(std::string(piece), std::make_pair(off, static_cast<uint32_t>(out.size() - before)));
  }

 private:
  std::unordered_map<std::string, std::pair<uint32_t, uint32_t>, SvHash, std::equal_to<>> map_;
  std::vector<int32_t> pool_;
};

void check_text(std::string_view text) {
  const size_t bad = utf8_invalid_at(text);
  if (bad != kValidUtf8) GDN2_THROW(ValueError, "encode: text is not valid UTF-8 (byte offset ", bad, ")");
}

void encode_into(const TokenizerImpl& t, std::string_view text, std::vector<int32_t>& out, WordCache& cache) {
  auto bpe = [&t](std::string_view piece, std::vector<int32_t>& o) { t.model.tokenize(piece, o); };
  auto sink = [&](std::string_view piece) { cache.ids(piece, out, bpe); };
  std::vector<Segment> raw_segs, norm_segs;
  t.raw_matcher.split(text, t.added, raw_segs);
  for (const Segment& s : raw_segs) {
    if (s.token >= 0) {
      out.push_back(t.added[s.token].id);
      continue;
    }
    const std::string_view part = text.substr(s.begin, s.end - s.begin);
    std::string normalized;
    std::string_view norm = part;
    if (!t.normalizer.identity()) {
      normalized = t.normalizer.apply(part);
      norm = normalized;
    }
    t.normalized_matcher.split(norm, t.added, norm_segs);
    for (const Segment& n : norm_segs) {
      if (n.token >= 0) {
        out.push_back(t.added[n.token].id);
      } else {
        t.pre_tokenizer.run(norm.substr(n.begin, n.end - n.begin), PieceSink(sink));
      }
    }
  }
}

}  // namespace

std::vector<int32_t> TokenizerImpl::encode(std::string_view text) const {
  check_text(text);
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 4);
  WordCache cache;
  encode_into(*this, text, out, cache);
  return out;
}

void TokenizerImpl::check_id(int32_t id, const char* what) const {
  if (id < 0 || static_cast<size_t>(id) >= id_kind.size() || id_kind[id] == kNone)
    GDN2_THROW(ValueError, what, ": id ", id, " is not a token of this tokenizer (vocab size ", id_kind.size(), ")");
}

std::string TokenizerImpl::decode(const std::vector<int32_t>& ids, bool skip_special) const {
  std::string out;
  bool first = true;
  for (int32_t id : ids) {
    check_id(id, "decode");
    if (skip_special && id_kind[id] == kSpecial) continue;
    if (decoder == DecoderKind::none && !first) out += ' ';
    out += id_bytes[id];
    first = false;
  }
  return decoder == DecoderKind::byte_level ? utf8_lossy(out) : out;
}

}  // namespace tokenizer_detail

using tokenizer_detail::TokenizerImpl;

Tokenizer::Tokenizer(std::shared_ptr<const TokenizerImpl> impl) : impl_(std::move(impl)) {}

Tokenizer Tokenizer::from_file(const std::string& tokenizer_json) {
  std::ifstream in(tokenizer_json, std::ios::binary);
  if (!in) GDN2_THROW(IoError, "cannot open tokenizer file ", tokenizer_json);
  std::ostringstream os;
  os << in.rdbuf();
  if (in.bad()) GDN2_THROW(IoError, "cannot read tokenizer file ", tokenizer_json);
  return from_json(os.str(), tokenizer_json);
}

Tokenizer Tokenizer::from_json(const std::string& json_text, const std::string& label) {
  nlohmann::json root;
  try {
    root = nlohmann::json::parse(json_text);
  } catch (const nlohmann::json::exception& e) {
    GDN2_THROW(FormatError, label, ": not valid JSON: ", e.what());
  }
  return Tokenizer(tokenizer_detail::load_tokenizer(root, label));
}

std::vector<int32_t> Tokenizer::encode(std::string_view text) const { return impl_->encode(text); }

std::vector<std::vector<int32_t>> Tokenizer::encode_batch(const std::vector<std::string>& texts) const {
  for (const std::string& t : texts) tokenizer_detail::check_text(t);
  std::vector<std::vector<int32_t>> out(texts.size());
  std::exception_ptr error;
  const auto n = static_cast<int64_t>(texts.size());
#pragma omp parallel if (n > 1)
  {
    tokenizer_detail::WordCache cache;
#pragma omp for schedule(dynamic, 1)
    for (int64_t i = 0; i < n; ++i) {
      try {
        out[i].reserve(texts[i].size() / 3 + 4);
        tokenizer_detail::encode_into(*impl_, texts[i], out[i], cache);
      } catch (...) {
#pragma omp critical(gdn2_tokenizer_error)
        if (!error) error = std::current_exception();
      }
    }
  }
  if (error) std::rethrow_exception(error);
  return out;
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool skip_special) const {
  return impl_->decode(ids, skip_special);
}

std::string Tokenizer::token_bytes(int32_t id) const {
  impl_->check_id(id, "token_bytes");
  return impl_->id_bytes[id];
}

int32_t Tokenizer::vocab_size() const { return static_cast<int32_t>(impl_->id_kind.size()); }

std::optional<int32_t> Tokenizer::token_to_id(std::string_view token) const {
  const std::string key(token);
  if (auto it = impl_->added_by_content.find(key); it != impl_->added_by_content.end()) return it->second;
  if (auto it = impl_->model.vocab.find(key); it != impl_->model.vocab.end()) return it->second;
  return std::nullopt;
}

std::optional<std::string> Tokenizer::id_to_token(int32_t id) const {
  if (id < 0 || id >= vocab_size() || impl_->id_kind[id] == TokenizerImpl::kNone) return std::nullopt;
  return impl_->id_token[id];
}

std::optional<int32_t> Tokenizer::eos_id() const {
  for (const char* name : {"<|endoftext|>", "<|im_end|>", "<|end_of_text|>", "<|eot_id|>", "</s>", "<eos>", "<|eos|>"})
    for (const auto& a : impl_->added)
      if (a.special && a.content == name) return a.id;
  return std::nullopt;
}

bool Tokenizer::is_special(int32_t id) const {
  return id >= 0 && id < vocab_size() && impl_->id_kind[id] == TokenizerImpl::kSpecial;
}

std::string Tokenizer::to_json() const { return impl_->to_json_text(); }

void Tokenizer::save(const std::string& tokenizer_json) const { atomic_write_file(tokenizer_json, to_json()); }

}  // namespace gdn2
