// Atomic file replacement through a temp file, fsync and rename (see gdn2/atomic_file.h for the contract).
#include "gdn2/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "gdn2/error.h"

namespace gdn2 {

namespace {

std::string errno_text(int err) { return std::strerror(err); }

std::string temp_name_for(const std::string& path) {
  static std::atomic<uint64_t> counter{0};
  return path + ".tmp." + std::to_string(static_cast<long long>(::getpid())) + "." +
         std::to_string(counter.fetch_add(1));
}

std::string directory_of(const std::string& path) {
  std::string dir = std::filesystem::path(path).parent_path().string();
  return dir.empty() ? std::string(".") : dir;
}

// Removes the temp file unless dismissed; closes the stream if still open.
class TempFile {
 public:
  TempFile(std::string name, std::FILE* f) : name_(std::move(name)), f_(f) {}
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  ~TempFile() {
    if (f_ != nullptr) std::fclose(f_);
    if (!dismissed_) ::unlink(name_.c_str());
  }
  std::FILE* file() const { return f_; }
  // fclose, reporting its error (the stream is gone either way).
  int close() {
    const int rc = std::fclose(f_);
    f_ = nullptr;
    return rc;
  }
  void dismiss() { dismissed_ = true; }

 private:
  std::string name_;
  std::FILE* f_;
  bool dismissed_ = false;
};

void fsync_directory(const std::string& path) {
  const std::string dir = directory_of(path);
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    GDN2_THROW(IoError, "'", path, "' was written, but opening its directory '", dir,
               "' to fsync it failed: ", errno_text(err));
  }
  int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0 && err != EINVAL)
    GDN2_THROW(IoError, "'", path, "' was written, but fsync of its directory '", dir, "' failed: ", errno_text(err));
}

}  // namespace

void write_all(std::FILE* f, const void* data, size_t size, std::string_view what) {
  if (size == 0) return;
  errno = 0;
  const size_t n = std::fwrite(data, 1, size, f);
  if (n != size) {
    const int err = errno;
    GDN2_THROW(IoError, "writing ", what, ": wrote ", n, " of ", size, " bytes: ",
               err != 0 ? errno_text(err) : std::string("short write"));
  }
}

void atomic_write_file(const std::string& path, const std::function<void(std::FILE*)>& writer) {
  GDN2_CHECK(!path.empty(), ValueError, "atomic_write_file: empty path");
  GDN2_CHECK(static_cast<bool>(writer), ValueError, "atomic_write_file: no writer for '", path, "'");
  const std::string tmp = temp_name_for(path);
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
  if (fd < 0) {
    const int err = errno;
    GDN2_THROW(IoError, "cannot create temp file '", tmp, "' to write '", path, "': ", errno_text(err));
  }
  std::FILE* f = ::fdopen(fd, "wb");
  if (f == nullptr) {
    const int err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    GDN2_THROW(IoError, "fdopen of temp file '", tmp, "' failed: ", errno_text(err));
  }
  TempFile guard(tmp, f);

  writer(f);  // an exception leaves through the guard, which removes the temp file

  if (std::ferror(f) != 0) GDN2_THROW(IoError, "writing '", path, "': a write to the temp file failed");
  if (std::fflush(f) != 0) {
    const int err = errno;
    GDN2_THROW(IoError, "writing '", path, "': flush failed: ", errno_text(err));
  }
  if (::fsync(::fileno(f)) != 0) {
    const int err = errno;
    GDN2_THROW(IoError, "writing '", path, "': fsync failed: ", errno_text(err));
  }
  if (guard.close() != 0) {
    const int err = errno;
    GDN2_THROW(IoError, "writing '", path, "': close failed: ", errno_text(err));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    GDN2_THROW(IoError, "cannot rename '", tmp, "' over '", path, "': ", errno_text(err));
  }
  guard.dismiss();
  fsync_directory(path);
}

void atomic_write_file(const std::string& path, const void* data, size_t size) {
  atomic_write_file(path, [&](std::FILE* f) { write_all(f, data, size, "'" + path + "'"); });
}

}  // namespace gdn2
