// Training checkpoints: step directories written whole-or-nothing (temp dir + rename) and a `latest` pointer.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace gdn2 {

// out/checkpoints/step_000123
std::string checkpoint_step_dir(const std::string& out_dir, int64_t step);
// The directory `latest` points at, if any (validated to be an existing step directory).
std::optional<std::string> checkpoint_latest(const std::string& out_dir);
// Runs `write(tmp_dir)` into a fresh temporary directory, then renames it to the step directory and points
// `latest` at it (atomically); finally keeps only the newest `keep` step directories. On failure the temporary
// directory is removed and the previous checkpoint stays the latest.
template <class F>
void checkpoint_commit(const std::string& out_dir, int64_t step, int64_t keep, F&& write);
void checkpoint_commit_dir(const std::string& out_dir, int64_t step, int64_t keep, const std::string& tmp_dir);
std::string checkpoint_tmp_dir(const std::string& out_dir, int64_t step);
void remove_tree_quietly(const std::string& path);

template <class F>
void checkpoint_commit(const std::string& out_dir, int64_t step, int64_t keep, F&& write) {
  const std::string tmp = checkpoint_tmp_dir(out_dir, step);
  try {
    write(tmp);
  } catch (...) {
    remove_tree_quietly(tmp);
    throw;
  }
  checkpoint_commit_dir(out_dir, step, keep, tmp);
}

}  // namespace gdn2
