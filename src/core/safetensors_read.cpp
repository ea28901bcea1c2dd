// The safetensors reader: strict header validation over an mmap or a byte buffer, zero-copy tensor views.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <string_view>
#include <tuple>

#include "core/mapped_file.h"
#include "gdn2/safetensors.h"

namespace gdn2 {

namespace {

using json = nlohmann::json;

constexpr uint64_t kMaxHeaderBytes = 100'000'000;  // as in the reference implementation
constexpr size_t kMaxNesting = 16;                 // a valid header nests 3 deep (object, entry, shape array)

// Throws FormatError naming the file; the details (which may quote hostile names or JSON) are cut to a sane length.
template <class... Args>
[[noreturn]] void bad(const std::string& file, const Args&... args) {
  std::string detail = detail::concat(args...);
  if (detail.size() > 1000) detail = detail.substr(0, 1000) + "... (truncated)";
  GDN2_THROW(FormatError, "safetensors file '", file, "': ", detail);
}

// Parses the header text, rejecting duplicate keys in any object and absurd nesting.
json parse_header_json(const char* first, const char* last, const std::string& file) {
  std::vector<std::set<std::string>> keys;  // one key set per open object
  size_t nesting = 0;
  auto callback = [&](int /*depth*/, json::parse_event_t event, json& parsed) -> bool {
    switch (event) {
      case json::parse_event_t::object_start:
        keys.emplace_back();
        [[fallthrough]];
      case json::parse_event_t::array_start:
        if (++nesting > kMaxNesting) bad(file, "header JSON is nested more than ", kMaxNesting, " levels deep");
        break;
      case json::parse_event_t::object_end:
        if (!keys.empty()) keys.pop_back();
        [[fallthrough]];
      case json::parse_event_t::array_end:
        if (nesting > 0) --nesting;
        break;
      case json::parse_event_t::key:
        if (!keys.empty() && parsed.is_string() && !keys.back().insert(parsed.get_ref<const std::string&>()).second)
          bad(file, "duplicate key \"", parsed.get_ref<const std::string&>(), "\" in the header");
        break;
      case json::parse_event_t::value:
        break;
    }
    return true;
  };
  try {
    return json::parse(first, last, callback, /*allow_exceptions=*/true, /*ignore_comments=*/false);
  } catch (const json::exception& e) {
    bad(file, "header is not valid UTF-8 JSON: ", e.what());
  }
}

// A JSON integer >= 0 that fits `limit`, else nullopt.
std::optional<uint64_t> non_negative_integer(const json& v, uint64_t limit) {
  if (v.is_number_unsigned()) {
    const auto x = v.get<uint64_t>();
    if (x <= limit) return x;
    return std::nullopt;
  }
  if (v.is_number_integer()) {  // signed: only negative values land here, but check anyway
    const auto x = v.get<int64_t>();
    if (x >= 0 && static_cast<uint64_t>(x) <= limit) return static_cast<uint64_t>(x);
  }
  return std::nullopt;
}

SafetensorsInfo parse_entry(const std::string& name, const json& entry, uint64_t data_size, const std::string& file) {
  if (!entry.is_object()) bad(file, "entry \"", name, "\" is not a JSON object");
  for (const auto& [key, value] : entry.items()) {
    (void)value;
    if (key != "dtype" && key != "shape" && key != "data_offsets")
      bad(file, "entry \"", name, "\" has an unknown field \"", key, "\"");
  }
  for (const char* field : {"dtype", "shape", "data_offsets"})
    if (!entry.contains(field)) bad(file, "entry \"", name, "\" lacks the field \"", field, "\"");

  SafetensorsInfo info;
  info.name = name;
  const json& dt = entry["dtype"];
  if (!dt.is_string()) bad(file, "entry \"", name, "\": dtype is not a string");
  const auto parsed_dt = dtype_from_name(dt.get_ref<const std::string&>());
  if (!parsed_dt) bad(file, "entry \"", name, "\": unsupported dtype \"", dt.get_ref<const std::string&>(), "\"");
  info.dtype = *parsed_dt;

  const json& shape = entry["shape"];
  if (!shape.is_array()) bad(file, "entry \"", name, "\": shape is not an array");
  for (const json& e : shape) {
    const auto extent = non_negative_integer(e, static_cast<uint64_t>(std::numeric_limits<int64_t>::max()));
    if (!extent) bad(file, "entry \"", name, "\": shape holds ", e.dump(), ", not a non-negative int64");
    info.shape.push_back(static_cast<int64_t>(*extent));
  }
  uint64_t numel = 0;
  try {  // the same rule Tensor applies, so that every accepted entry can become a Tensor
    numel = static_cast<uint64_t>(shape_numel(info.shape));
  } catch (const ValueError&) {
    bad(file, "entry \"", name, "\": shape ", shape_str(info.shape), " overflows int64");
  }

  const json& offsets = entry["data_offsets"];
  if (!offsets.is_array() || offsets.size() != 2)
    bad(file, "entry \"", name, "\": data_offsets is not an array of two integers");
  const auto begin = non_negative_integer(offsets[0], std::numeric_limits<uint64_t>::max());
  const auto end = non_negative_integer(offsets[1], std::numeric_limits<uint64_t>::max());
  if (!begin || !end) bad(file, "entry \"", name, "\": data_offsets ", offsets.dump(), " are not non-negative integers");
  if (*begin > *end) bad(file, "entry \"", name, "\": data_offsets ", offsets.dump(), " have begin > end");
  if (*end > data_size)
    bad(file, "entry \"", name, "\": data_offsets ", offsets.dump(), " end past the data section (", data_size,
        " bytes)");
  const uint64_t elem = dtype_size(info.dtype);
  if (numel > std::numeric_limits<uint64_t>::max() / elem || numel * elem != *end - *begin)
    bad(file, "entry \"", name, "\": ", dtype_name(info.dtype), shape_str(info.shape), " needs ", numel, " x ", elem,
        " bytes but data_offsets ", offsets.dump(), " span ", *end - *begin);
  info.begin = *begin;
  info.end = *end;
  return info;
}

}  // namespace

SafetensorsFile SafetensorsFile::parse(std::shared_ptr<void> owner, const uint8_t* bytes, size_t size,
                                       const std::string& label) {
  if (size < 8) bad(label, "only ", size, " bytes; a safetensors file starts with an 8-byte header length");
  uint64_t header_len = 0;
  for (int i = 0; i < 8; ++i) header_len |= static_cast<uint64_t>(bytes[i]) << (8 * i);
  if (header_len == 0) bad(label, "header length is 0");
  if (header_len > kMaxHeaderBytes) bad(label, "header length ", header_len, " exceeds the limit of ", kMaxHeaderBytes);
  if (header_len > size - 8) bad(label, "header length ", header_len, " exceeds the ", size - 8, " bytes after it");
  const char* header = reinterpret_cast<const char*>(bytes + 8);
  if (header[0] != '{') bad(label, "header does not start with '{'");
  // nlohmann's lexer takes a NUL byte for the end of input and would ignore what follows; JSON text has none.
  if (std::memchr(header, 0, header_len) != nullptr) bad(label, "header is not valid UTF-8 JSON: it holds a NUL byte");

  const json j = parse_header_json(header, header + header_len, label);
  if (!j.is_object()) bad(label, "header is not a JSON object");

  SafetensorsFile f;
  f.path_ = label;
  f.owner_ = std::move(owner);
  f.data_ = bytes + 8 + header_len;
  const uint64_t data_size = size - 8 - header_len;
  for (const auto& [key, value] : j.items()) {
    if (key == "__metadata__") {
      if (!value.is_object()) bad(label, "__metadata__ is not a JSON object");
      for (const auto& [mk, mv] : value.items()) {
        if (!mv.is_string()) bad(label, "__metadata__ value of \"", mk, "\" is not a string");
        f.metadata_[mk] = mv.get<std::string>();
      }
      continue;
    }
    f.infos_.push_back(parse_entry(key, value, data_size, label));
  }

  std::sort(f.infos_.begin(), f.infos_.end(), [](const SafetensorsInfo& a, const SafetensorsInfo& b) {
    return std::tie(a.begin, a.end, a.name) < std::tie(b.begin, b.end, b.name);
  });
  const SafetensorsInfo* last = nullptr;  // the non-empty range reaching furthest so far
  for (const SafetensorsInfo& in : f.infos_) {
    if (in.begin == in.end) continue;
    if (last != nullptr && in.begin < last->end)
      bad(label, "byte ranges of \"", last->name, "\" [", last->begin, ", ", last->end, ") and \"", in.name, "\" [",
          in.begin, ", ", in.end, ") overlap");
    if (last == nullptr || in.end > last->end) last = &in;
  }
  for (size_t i = 0; i < f.infos_.size(); ++i) {
    f.names_.push_back(f.infos_[i].name);
    f.index_.emplace(f.infos_[i].name, i);
  }
  return f;
}

SafetensorsFile SafetensorsFile::open(const std::string& path) {
  std::shared_ptr<MappedFile> m = MappedFile::open(path);
  const uint8_t* bytes = m->data();
  const size_t size = m->size();
  return parse(std::move(m), bytes, size, path);
}

SafetensorsFile SafetensorsFile::from_bytes(std::vector<uint8_t> bytes, const std::string& label) {
  auto holder = std::make_shared<std::vector<uint8_t>>(std::move(bytes));
  const uint8_t* p = holder->data();
  const size_t size = holder->size();
  return parse(std::move(holder), p, size, label);
}

SafetensorsFile SafetensorsFile::from_bytes(const std::string& bytes, const std::string& label) {
  return from_bytes(std::vector<uint8_t>(bytes.begin(), bytes.end()), label);
}

const SafetensorsInfo& SafetensorsFile::info(const std::string& name) const {
  const auto it = index_.find(name);
  if (it == index_.end()) GDN2_THROW(ValueError, "no tensor \"", name, "\" in safetensors file '", path_, "'");
  return infos_[it->second];
}

Tensor SafetensorsFile::get(const std::string& name) const {
  const SafetensorsInfo& in = info(name);
  const uint8_t* p = data_ + in.begin;
  const size_t nbytes = static_cast<size_t>(in.end - in.begin);
  if (reinterpret_cast<uintptr_t>(p) % dtype_size(in.dtype) == 0)
    return Tensor::wrap(in.shape, in.dtype, const_cast<uint8_t*>(p), owner_, /*read_only=*/true);
  // Misaligned data (a header length that is not a multiple of the dtype size): an aligned private copy, read-only
  // like the view so that callers see the same behaviour whatever the file's layout.
  void* copy = std::aligned_alloc(64, std::max<size_t>(64, (nbytes + 63) / 64 * 64));
  GDN2_CHECK(copy != nullptr, IoError, "out of memory copying tensor \"", name, "\" (", nbytes, " bytes) from '",
             path_, "'");
  std::shared_ptr<void> holder(copy, [](void* q) { std::free(q); });
  std::memcpy(copy, p, nbytes);
  return Tensor::wrap(in.shape, in.dtype, copy, std::move(holder), /*read_only=*/true);
}

}  // namespace gdn2
