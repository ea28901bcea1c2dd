// The shard writer: validates ids, packs them as u16 or u32 with a checksummed header, writes atomically.
#include <cstdio>
#include <limits>
#include <vector>

#include "data/shard_format.h"
#include "gdn2/atomic_file.h"
#include "gdn2/data/shard.h"
#include "gdn2/error.h"

namespace gdn2 {

uint32_t shard_token_bytes(uint32_t vocab_size) {
  GDN2_CHECK(vocab_size >= 1 && vocab_size <= static_cast<uint32_t>(std::numeric_limits<int32_t>::max()), ValueError,
             "token shard: vocab_size ", vocab_size, " is outside [1, 2^31-1]");
  return vocab_size <= 65536u ? 2u : 4u;
}

uint64_t fnv1a64(const void* data, size_t size, uint64_t seed) {
  const auto* p = static_cast<const uint8_t*>(data);
  uint64_t h = seed;
  for (size_t i = 0; i < size; ++i) {
    h ^= p[i];
    h *= 0x100000001b3ull;
  }
  return h;
}

namespace {

template <class T>
std::vector<T> pack(const int32_t* tokens, size_t count) {
  std::vector<T> out(count);
  for (size_t i = 0; i < count; ++i) out[i] = static_cast<T>(tokens[i]);
  return out;
}

}  // namespace

void shard_write(const std::string& path, const int32_t* tokens, size_t count, uint32_t vocab_size, uint32_t eos_id) {
  ShardHeader h;
  h.token_bytes = shard_token_bytes(vocab_size);
  GDN2_CHECK(eos_id < vocab_size, ValueError, "token shard '", path, "': eos_id ", eos_id, " >= vocab_size ",
             vocab_size);
  GDN2_CHECK(count == 0 || tokens != nullptr, ValueError, "token shard '", path, "': null tokens");
  h.vocab_size = vocab_size;
  h.eos_id = eos_id;
  h.tokens = count;
  for (size_t i = 0; i < count; ++i) {
    const int32_t t = tokens[i];
    GDN2_CHECK(t >= 0 && static_cast<uint32_t>(t) < vocab_size, ValueError, "token shard '", path, "': token ", i,
               " is ", t, ", outside [0, ", vocab_size, ")");
    h.documents += static_cast<uint32_t>(t) == eos_id ? 1 : 0;
  }
  std::vector<uint16_t> p16;
  std::vector<uint32_t> p32;
  const void* payload = nullptr;
  if (h.token_bytes == 2) {
    p16 = pack<uint16_t>(tokens, count);
    payload = p16.data();
  } else {
    p32 = pack<uint32_t>(tokens, count);
    payload = p32.data();
  }
  const size_t payload_bytes = count * h.token_bytes;
  h.checksum = fnv1a64(payload, payload_bytes);
  uint8_t header[kShardHeaderBytes];
  data_detail::encode_header(h, header);
  atomic_write_file(path, [&](std::FILE* f) {
    write_all(f, header, sizeof(header), "token shard header");
    write_all(f, payload, payload_bytes, "token shard payload");
  });
}

}  // namespace gdn2
