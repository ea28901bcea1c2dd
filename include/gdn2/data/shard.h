// Token shards: one binary file of token ids with a small validated header, written atomically, read by mmap.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace gdn2 {

class MappedFile;

// File layout (little-endian), 64-byte header then the payload:
//   0  char[8] magic "GDN2TOK\0"      24 u64 documents (the number of eos_id tokens in the payload)
//   8  u32 version (1)                32 u32 vocab_size (1 .. 2^31-1)
//  12  u32 token_bytes (2 or 4)       36 u32 eos_id (< vocab_size)
//  16  u64 tokens                     40 u64 checksum: FNV-1a 64 of the payload bytes
//                                     48 16 reserved bytes, zero
//  64  payload: `tokens` ids of `token_bytes` each, u16 when vocab_size <= 65536 else u32; every id < vocab_size.
// Documents are the caller's: data_prepare ends each one with eos_id.
inline constexpr char kShardMagic[8] = {'G', 'D', 'N', '2', 'T', 'O', 'K', '\0'};
inline constexpr uint32_t kShardVersion = 1;
inline constexpr size_t kShardHeaderBytes = 64;

struct ShardHeader {
  uint32_t version = kShardVersion;
  uint32_t token_bytes = 2;
  uint64_t tokens = 0;
  uint64_t documents = 0;
  uint32_t vocab_size = 0;
  uint32_t eos_id = 0;
  uint64_t checksum = 0;
};

// 2 when vocab_size <= 65536, else 4. ValueError unless 1 <= vocab_size <= 2^31-1.
uint32_t shard_token_bytes(uint32_t vocab_size);
// FNV-1a 64 over bytes; `seed` continues a previous call (the default is the FNV offset basis).
uint64_t fnv1a64(const void* data, size_t size, uint64_t seed = 0xcbf29ce484222325ull);

// Writes `tokens` as a shard at `path` through atomic_write_file: `path` is either the old file or the whole new one.
// ValueError (and no file) when vocab_size is out of range, eos_id >= vocab_size or any id is outside [0, vocab_size).
void shard_write(const std::string& path, const int32_t* tokens, size_t count, uint32_t vocab_size, uint32_t eos_id);
inline void shard_write(const std::string& path, const std::vector<int32_t>& tokens, uint32_t vocab_size,
                        uint32_t eos_id) {
  shard_write(path, tokens.data(), tokens.size(), vocab_size, eos_id);
}

// A read-only shard over an mmap. Copies share the mapping.
class TokenShard {
 public:
  // Maps and validates `path`: magic, version, token width for the vocab size, eos_id < vocab_size, zero reserved
  // bytes, file length == 64 + tokens * token_bytes, every id < vocab_size, the eos count == documents and, when
  // `verify_checksum`, the payload checksum. Any violation is a FormatError naming the file; a missing or
  // unreadable file is an IoError. Nothing is ever read outside the file.
  static TokenShard open(const std::string& path, bool verify_checksum = true);

  const ShardHeader& header() const { return header_; }
  const std::string& path() const { return path_; }
  int64_t size() const { return static_cast<int64_t>(header_.tokens); }
  int64_t documents() const { return static_cast<int64_t>(header_.documents); }
  uint32_t vocab_size() const { return header_.vocab_size; }
  uint32_t eos_id() const { return header_.eos_id; }

  int32_t at(int64_t i) const;  // ValueError outside [0, size())
  // Tokens [begin, begin + count) into `out`; ValueError unless the range lies inside [0, size()].
  void read(int64_t begin, int64_t count, int32_t* out) const;
  std::vector<int32_t> to_vector() const;

 private:
  std::shared_ptr<const MappedFile> file_;
  const uint8_t* payload_ = nullptr;
  ShardHeader header_;
  std::string path_;
};

}  // namespace gdn2
