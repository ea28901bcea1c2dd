// Read-only memory mapping of a whole regular file, unmapped when the last shared owner lets go.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace gdn2 {

// Contract: open() maps the whole file with PROT_READ / MAP_PRIVATE, or throws IoError naming the path
// (missing file, not a regular file, mmap failure). An empty file gives data() == nullptr, size() == 0.
// The bytes stay valid while any shared_ptr to the MappedFile lives. Truncating the file on disk while it is
// mapped makes later reads of the lost pages fault (SIGBUS): files must not be rewritten in place, which is
// what atomic_write_file guarantees for files this library writes.
class MappedFile {
 public:
  static std::shared_ptr<MappedFile> open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  MappedFile() = default;
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace gdn2
