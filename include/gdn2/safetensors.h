// Safetensors I/O: a strict, bounds-safe reader over an mmap or a byte buffer, and an atomic writer.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "gdn2/tensor.h"

namespace gdn2 {

// One tensor's entry in the header. begin/end are byte offsets into the data section (which starts at
// file offset 8 + header length); end - begin == numel * dtype_size.
struct SafetensorsInfo {
  std::string name;
  DType dtype = DType::f32;
  Shape shape;
  uint64_t begin = 0;
  uint64_t end = 0;
};

// Contract of the reader:
//  - The whole header is validated when the file is opened; every malformed or hostile input throws
//    FormatError naming the file and the defect, never reads outside the buffer, never crashes. Rules:
//    file >= 8 bytes; header length (u64 LE) in [1, min(file size - 8, 100'000'000)]; header starts with '{'
//    and is one UTF-8 JSON object (trailing spaces allowed), nested at most a few levels, with no duplicate
//    key in any object; each entry other than "__metadata__" is an object with exactly the keys "dtype"
//    (a dtype_from_name spelling), "shape" (array of non-negative integers whose product fits int64) and
//    "data_offsets" (two non-negative integers, begin <= end <= data section size, end - begin == numel *
//    dtype size); non-empty byte ranges do not overlap (gaps are allowed); "__metadata__", if present, is an
//    object of string values.
//  - get() returns a read-only view into the mapping/buffer (kept alive by the tensor), or an owned aligned
//    copy when the data is not aligned to the dtype size. Unknown names throw ValueError.
//  - Copies of a SafetensorsFile share the mapping; tensors from get() stay valid after the file object dies.
class SafetensorsFile {
 public:
  // Memory-maps `path` read-only. IoError if it cannot be opened or mapped; FormatError if malformed.
  static SafetensorsFile open(const std::string& path);
  // Parses an in-memory copy; `label` stands in for the file name in messages and path().
  static SafetensorsFile from_bytes(std::vector<uint8_t> bytes, const std::string& label = "<memory>");
  static SafetensorsFile from_bytes(const std::string& bytes, const std::string& label = "<memory>");

  const std::string& path() const { return path_; }
  const std::vector<std::string>& names() const { return names_; }  // in data-offset order
  size_t size() const { return names_.size(); }
  bool contains(const std::string& name) const { return index_.count(name) != 0; }
  const SafetensorsInfo& info(const std::string& name) const;
  Tensor get(const std::string& name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  SafetensorsFile() = default;
  static SafetensorsFile parse(std::shared_ptr<void> owner, const uint8_t* bytes, size_t size, const std::string& label);

  std::string path_;
  std::shared_ptr<void> owner_;  // keeps `data_` alive (a MappedFile or a byte vector)
  const uint8_t* data_ = nullptr;  // start of the data section
  std::vector<SafetensorsInfo> infos_;  // in data-offset order
  std::vector<std::string> names_;
  std::unordered_map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

// Contract of the writer: tensors are written in the given order, contiguously, after a JSON header padded with
// spaces so that the data section starts at a multiple of 8 bytes; the header lists "__metadata__" first (when
// non-empty), then the tensors in order. ValueError for an empty, duplicate or "__metadata__" name, an undefined
// tensor, or a name / metadata string that is not valid UTF-8; IoError (from atomic_write_file) if the file
// cannot be written. The file at `path` is replaced atomically: never left partial.
void safetensors_write(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

// The bytes safetensors_write would write (header + data), for tests and in-memory use.
std::string safetensors_serialize(const std::vector<std::pair<std::string, Tensor>>& tensors,
                                  const std::map<std::string, std::string>& metadata = {});

}  // namespace gdn2
