// The safetensors writer: validated header, 8-byte-aligned data section, written through atomic_write_file.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <set>

#include "gdn2/atomic_file.h"
#include "gdn2/safetensors.h"

namespace gdn2 {

namespace {

using ordered_json = nlohmann::ordered_json;

constexpr uint64_t kMaxHeaderBytes = 100'000'000;  // what readers (ours and the reference) accept

// The header text (padded with spaces to make 8 + size a multiple of 8), after validating the inputs.
std::string build_header(const std::vector<std::pair<std::string, Tensor>>& tensors,
                         const std::map<std::string, std::string>& metadata) {
  std::set<std::string_view> seen;
  ordered_json header = ordered_json::object();
  if (!metadata.empty()) {
    ordered_json m = ordered_json::object();
    for (const auto& [k, v] : metadata) m[k] = v;
    header["__metadata__"] = std::move(m);
  }
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    GDN2_CHECK(!name.empty(), ValueError, "safetensors_write: empty tensor name");
    GDN2_CHECK(name != "__metadata__", ValueError, "safetensors_write: \"__metadata__\" is reserved, not a tensor name");
    GDN2_CHECK(seen.insert(name).second, ValueError, "safetensors_write: duplicate tensor name \"", name, "\"");
    GDN2_CHECK(t.defined(), ValueError, "safetensors_write: tensor \"", name, "\" is undefined");
    const uint64_t n = t.nbytes();
    header[name] = ordered_json{
        {"dtype", dtype_name(t.dtype())}, {"shape", t.shape()}, {"data_offsets", {offset, offset + n}}};
    offset += n;
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const nlohmann::json::exception& e) {
    GDN2_THROW(ValueError, "safetensors_write: a tensor name or metadata string is not valid UTF-8: ", e.what());
  }
  while ((8 + text.size()) % 8 != 0) text.push_back(' ');
  GDN2_CHECK(text.size() <= kMaxHeaderBytes, ValueError, "safetensors_write: header of ", text.size(),
             " bytes exceeds the limit of ", kMaxHeaderBytes);
  return text;
}

std::string length_prefix(uint64_t n) {
  std::string b(8, '\0');
  for (int i = 0; i < 8; ++i) b[static_cast<size_t>(i)] = static_cast<char>((n >> (8 * i)) & 0xffu);
  return b;
}

}  // namespace

void safetensors_write(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  const std::string header = build_header(tensors, metadata);
  const std::string prefix = length_prefix(header.size());
  atomic_write_file(path, [&](std::FILE* f) {
    write_all(f, prefix.data(), prefix.size(), "the header length of '" + path + "'");
    write_all(f, header.data(), header.size(), "the header of '" + path + "'");
    for (const auto& [name, t] : tensors) write_all(f, t.raw(), t.nbytes(), "tensor \"" + name + "\" of '" + path + "'");
  });
}

std::string safetensors_serialize(const std::vector<std::pair<std::string, Tensor>>& tensors,
                                  const std::map<std::string, std::string>& metadata) {
  const std::string header = build_header(tensors, metadata);
  std::string out = length_prefix(header.size()) + header;
  for (const auto& [name, t] : tensors) {
    (void)name;
    if (t.nbytes() > 0) out.append(static_cast<const char*>(t.raw()), t.nbytes());
  }
  return out;
}

}  // namespace gdn2
