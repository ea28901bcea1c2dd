// The shard reader: mmap, then strict validation of the header, the file length, every id and the checksum.
#include <limits>

#include "core/mapped_file.h"
#include "data/shard_format.h"
#include "gdn2/data/shard.h"
#include "gdn2/error.h"

namespace gdn2 {

namespace {

template <class... Args>
[[noreturn]] void bad(const std::string& path, const Args&... args) {
  GDN2_THROW(FormatError, "token shard '", path, "': ", args...);
}

// Checks every id < vocab and counts eos; returns the count. T is the stored width.
template <class T>
uint64_t scan_ids(const uint8_t* payload, uint64_t n, uint32_t vocab, uint32_t eos, const std::string& path) {
  uint64_t eos_count = 0;
  const bool all_valid = static_cast<uint64_t>(vocab) > std::numeric_limits<T>::max();
  for (uint64_t i = 0; i < n; ++i) {
    const T t = data_detail::get<T>(payload, i * sizeof(T));
    if (!all_valid && static_cast<uint64_t>(t) >= vocab)
      bad(path, "token ", i, " is ", static_cast<uint64_t>(t), ", not below vocab_size ", vocab);
    eos_count += static_cast<uint64_t>(t) == eos ? 1 : 0;
  }
  return eos_count;
}

}  // namespace

TokenShard TokenShard::open(const std::string& path, bool verify_checksum) {
  TokenShard s;
  s.path_ = path;
  std::shared_ptr<MappedFile> file = MappedFile::open(path);
  const size_t size = file->size();
  if (size < kShardHeaderBytes) bad(path, "file is ", size, " bytes, shorter than the ", kShardHeaderBytes, "-byte header");
  const uint8_t* base = file->data();
  if (std::memcmp(base, kShardMagic, sizeof(kShardMagic)) != 0) bad(path, "bad magic (not a gdn2 token shard)");
  const ShardHeader h = data_detail::decode_header(base);
  if (h.version != kShardVersion) bad(path, "format version ", h.version, ", this build reads version ", kShardVersion);
  if (h.vocab_size == 0 || h.vocab_size > static_cast<uint32_t>(std::numeric_limits<int32_t>::max()))
    bad(path, "vocab_size ", h.vocab_size, " is outside [1, 2^31-1]");
  const uint32_t want_bytes = h.vocab_size <= 65536u ? 2u : 4u;
  if (h.token_bytes != want_bytes)
    bad(path, "token width ", h.token_bytes, " bytes, but vocab_size ", h.vocab_size, " takes ", want_bytes);
  if (h.eos_id >= h.vocab_size) bad(path, "eos_id ", h.eos_id, " >= vocab_size ", h.vocab_size);
  for (size_t i = data_detail::kOffReserved; i < kShardHeaderBytes; ++i)
    if (base[i] != 0) bad(path, "reserved header byte ", i, " is not zero");
  const uint64_t payload_bytes = size - kShardHeaderBytes;
  if (h.tokens > payload_bytes / h.token_bytes || h.tokens * h.token_bytes != payload_bytes)
    bad(path, "header says ", h.tokens, " tokens of ", h.token_bytes, " bytes, but the payload is ", payload_bytes,
        " bytes");
  const uint8_t* payload = base + kShardHeaderBytes;
  const uint64_t eos = h.token_bytes == 2 ? scan_ids<uint16_t>(payload, h.tokens, h.vocab_size, h.eos_id, path)
                                          : scan_ids<uint32_t>(payload, h.tokens, h.vocab_size, h.eos_id, path);
  if (eos != h.documents) bad(path, "header says ", h.documents, " documents, but the payload has ", eos, " eos tokens");
  if (verify_checksum) {
    const uint64_t sum = fnv1a64(payload, payload_bytes);
    if (sum != h.checksum) bad(path, "payload checksum mismatch (header ", h.checksum, ", data ", sum, ")");
  }
  s.header_ = h;
  s.payload_ = payload;
  s.file_ = std::move(file);
  return s;
}

int32_t TokenShard::at(int64_t i) const {
  GDN2_CHECK(i >= 0 && i < size(), ValueError, "token shard '", path_, "': index ", i, " outside [0, ", size(), ")");
  int32_t v;
  read(i, 1, &v);
  return v;
}

void TokenShard::read(int64_t begin, int64_t count, int32_t* out) const {
  GDN2_CHECK(begin >= 0 && count >= 0 && begin <= size() && count <= size() - begin, ValueError, "token shard '",
             path_, "': range [", begin, ", ", begin, " + ", count, ") outside [0, ", size(), "]");
  if (header_.token_bytes == 2) {
    for (int64_t i = 0; i < count; ++i) out[i] = data_detail::get<uint16_t>(payload_, static_cast<size_t>(begin + i) * 2);
  } else {
    for (int64_t i = 0; i < count; ++i)
      out[i] = static_cast<int32_t>(data_detail::get<uint32_t>(payload_, static_cast<size_t>(begin + i) * 4));
  }
}

std::vector<int32_t> TokenShard::to_vector() const {
  std::vector<int32_t> v(static_cast<size_t>(size()));
  read(0, size(), v.data());
  return v;
}

}  // namespace gdn2
