// Crash-safe file replacement: write a sibling temp file, fsync it, rename it over the target, fsync the directory.
#pragma once

#include <cstddef>
#include <cstdio>
#include <functional>
#include <string>
#include <string_view>

namespace gdn2 {

// Contract of atomic_write_file:
//  - `writer` receives a FILE* opened for binary writing on a fresh temp file in the directory of `path`
//    (named path + ".tmp.<pid>.<counter>", created with O_EXCL, mode 0666 & ~umask). It must not close it.
//  - After `writer` returns, the stream's error flag is checked, the data is flushed and fsync'ed, the temp
//    file is renamed over `path` (atomic on POSIX), and the directory is fsync'ed.
//  - On any failure (the writer throws, a write or flush fails, a short write, fsync or rename fails) the temp
//    file is removed, `path` is left exactly as it was (absent, or the old contents), and:
//      * an exception thrown by the writer is rethrown unchanged (gdn2::Error or anything else);
//      * an operating-system failure throws gdn2::IoError naming the path and the errno text.
//  - The one exception: if only the final directory fsync fails, the new file is already in place; an IoError
//    says so (durability of the rename is not confirmed). Filesystems that do not support fsync on a
//    directory (EINVAL) are accepted silently.
//  - A crash (not an exception) part-way can leave a "*.tmp.<pid>.<n>" file beside `path`, never a partial `path`.
void atomic_write_file(const std::string& path, const std::function<void(std::FILE*)>& writer);

// The same for a byte buffer held in memory.
void atomic_write_file(const std::string& path, const void* data, size_t size);
inline void atomic_write_file(const std::string& path, std::string_view bytes) {
  atomic_write_file(path, bytes.data(), bytes.size());
}

// For writers: fwrite all `size` bytes or throw IoError ("writing <what>: <errno text>"). size 0 is a no-op.
void write_all(std::FILE* f, const void* data, size_t size, std::string_view what);

}  // namespace gdn2
