// Whole-or-nothing checkpoint directories and the `latest` pointer file.
#include "train/checkpoint_dir.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <vector>

#include "gdn2/atomic_file.h"
#include "gdn2/error.h"

namespace gdn2 {

namespace fs = std::filesystem;

std::string checkpoint_step_dir(const std::string& out_dir, int64_t step) {
  char name[32];
  std::snprintf(name, sizeof(name), "step_%06ld", static_cast<long>(step));
  return out_dir + "/checkpoints/" + name;
}

std::string checkpoint_tmp_dir(const std::string& out_dir, int64_t step) {
  const std::string dir = checkpoint_step_dir(out_dir, step) + ".tmp." + std::to_string(::getpid());
  std::error_code ec;
  fs::remove_all(dir, ec);
  fs::create_directories(dir, ec);
  GDN2_CHECK(!ec, IoError, "cannot create ", dir, ": ", ec.message());
  return dir;
}

void remove_tree_quietly(const std::string& path) {
  std::error_code ec;
  fs::remove_all(path, ec);
}

std::optional<std::string> checkpoint_latest(const std::string& out_dir) {
  const std::string pointer = out_dir + "/checkpoints/latest";
  std::ifstream f(pointer);
  if (!f.good()) return std::nullopt;
  std::string name;
  std::getline(f, name);
  GDN2_CHECK(name.rfind("step_", 0) == 0 && name.find('/') == std::string::npos, FormatError, pointer,
             ": does not name a step directory ('", name, "')");
  const std::string dir = out_dir + "/checkpoints/" + name;
  GDN2_CHECK(fs::is_directory(dir), FormatError, pointer, ": points at ", dir, ", which does not exist");
  return dir;
}

void checkpoint_commit_dir(const std::string& out_dir, int64_t step, int64_t keep, const std::string& tmp_dir) {
  const std::string final_dir = checkpoint_step_dir(out_dir, step);
  std::error_code ec;
  fs::remove_all(final_dir, ec);
  fs::rename(tmp_dir, final_dir, ec);
  if (ec) {
    remove_tree_quietly(tmp_dir);
    GDN2_THROW(IoError, "cannot move checkpoint into ", final_dir, ": ", ec.message());
  }
  atomic_write_file(out_dir + "/checkpoints/latest", fs::path(final_dir).filename().string() + "\n");
  // Keep the newest `keep` step directories.
  std::vector<std::string> steps;
  for (const auto& e : fs::directory_iterator(out_dir + "/checkpoints", ec)) {
    const std::string n = e.path().filename().string();
    if (e.is_directory() && n.rfind("step_", 0) == 0 && n.find(".tmp.") == std::string::npos) steps.push_back(n);
  }
  std::sort(steps.begin(), steps.end());
  for (size_t i = 0; keep > 0 && i + static_cast<size_t>(keep) < steps.size(); ++i)
    remove_tree_quietly(out_dir + "/checkpoints/" + steps[i]);
}

}  // namespace gdn2
