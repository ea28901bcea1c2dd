// The shard header's byte layout: little-endian encode and decode shared by the shard writer and reader.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>

#include "gdn2/data/shard.h"

namespace gdn2::data_detail {

static_assert(std::endian::native == std::endian::little, "token shards are little-endian; this host is not");

inline constexpr size_t kOffVersion = 8, kOffTokenBytes = 12, kOffTokens = 16, kOffDocuments = 24,
                        kOffVocab = 32, kOffEos = 36, kOffChecksum = 40, kOffReserved = 48;

template <class T>
void put(uint8_t* h, size_t off, T v) {
  std::memcpy(h + off, &v, sizeof(T));
}
template <class T>
T get(const uint8_t* h, size_t off) {
  T v;
  std::memcpy(&v, h + off, sizeof(T));
  return v;
}

inline void encode_header(const ShardHeader& s, uint8_t (&h)[kShardHeaderBytes]) {
  std::memset(h, 0, kShardHeaderBytes);
  std::memcpy(h, kShardMagic, sizeof(kShardMagic));
  put<uint32_t>(h, kOffVersion, s.version);
  put<uint32_t>(h, kOffTokenBytes, s.token_bytes);
  put<uint64_t>(h, kOffTokens, s.tokens);
  put<uint64_t>(h, kOffDocuments, s.documents);
  put<uint32_t>(h, kOffVocab, s.vocab_size);
  put<uint32_t>(h, kOffEos, s.eos_id);
  put<uint64_t>(h, kOffChecksum, s.checksum);
}

inline ShardHeader decode_header(const uint8_t* h) {
  ShardHeader s;
  s.version = get<uint32_t>(h, kOffVersion);
  s.token_bytes = get<uint32_t>(h, kOffTokenBytes);
  s.tokens = get<uint64_t>(h, kOffTokens);
  s.documents = get<uint64_t>(h, kOffDocuments);
  s.vocab_size = get<uint32_t>(h, kOffVocab);
  s.eos_id = get<uint32_t>(h, kOffEos);
  s.checksum = get<uint64_t>(h, kOffChecksum);
  return s;
}

}  // namespace gdn2::data_detail
