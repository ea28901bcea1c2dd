// Locating the installed corpus and listing its text files in a fixed, machine-independent order.
#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <tuple>

#include "gdn2/data/corpus.h"
#include "gdn2/data/shard.h"
#include "gdn2/error.h"

namespace gdn2 {

namespace fs = std::filesystem;

namespace {

constexpr const char* kDocRoot = "/usr/share/doc";

bool is_dir(const std::string& p) {
  std::error_code ec;
  return fs::is_directory(p, ec);
}

// <root>/usr/share/doc/python3.<minor>/html/_sources with the highest minor, or "".
std::string newest_python_docs(const std::string& root) {
  std::string best;
  long best_minor = -1;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(root + kDocRoot, ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("python3.", 0) != 0 || name.size() == 8) continue;
    const std::string minor = name.substr(8);
    if (!std::all_of(minor.begin(), minor.end(), [](char c) { return c >= '0' && c <= '9'; }) || minor.size() > 6)
      continue;
    const std::string sources = (e.path() / "html" / "_sources").string();
    const long m = std::stol(minor);
    if (m > best_minor && is_dir(sources)) {
      best_minor = m;
      best = sources;
    }
  }
  return best;
}

// Where scripts/get_corpus.sh unpacks the package when dpkg skips /usr/share/doc: $XDG_CACHE_HOME or ~/.cache.
std::string corpus_cache_root() {
  const char* xdg = std::getenv("XDG_CACHE_HOME");
  const char* home = std::getenv("HOME");
  if (xdg != nullptr && xdg[0] != '\0') return std::string(xdg) + "/gdn2/corpus";
  if (home != nullptr && home[0] != '\0') return std::string(home) + "/.cache/gdn2/corpus";
  return "";
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool text_name(const std::string& name) {
  const std::string l = lower(name);
  for (const char* ext : {".txt", ".rst", ".md"}) {
    const std::string e(ext);
    if (l.size() > e.size() && l.compare(l.size() - e.size(), e.size(), e) == 0) return true;
  }
  return false;
}

bool boilerplate_name(const std::string& filename) {
  const std::string stem = lower(filename.substr(0, filename.find('.')));
  return stem == "license" || stem == "licence" || stem == "copyright";
}

}  // namespace

std::optional<std::string> corpus_find(const std::string& dir) {
  std::string chosen = dir;
  if (chosen.empty()) {
    const char* env = std::getenv(std::string(kCorpusEnvVar).c_str());
    if (env != nullptr) chosen = env;
  }
  if (chosen.empty()) chosen = newest_python_docs("");
  if (chosen.empty()) chosen = newest_python_docs(corpus_cache_root());
  if (chosen.empty() || !is_dir(chosen)) return std::nullopt;
  return chosen;
}

std::string corpus_dir(const std::string& dir) {
  if (std::optional<std::string> found = corpus_find(dir)) return *found;
  const char* env = std::getenv(std::string(kCorpusEnvVar).c_str());
  const std::string where = !dir.empty()                       ? "'" + dir + "'"
                            : (env != nullptr && env[0] != 0) ? "$" + std::string(kCorpusEnvVar) + " = '" + env + "'"
                                                              : std::string(kDocRoot) + "/python3.*/html/_sources";
  GDN2_THROW(IoError, "no corpus at ", where, ": install it with scripts/get_corpus.sh (Debian package ",
             kCorpusPackage, ")");
}

std::vector<CorpusFile> corpus_files(const std::string& dir) {
  std::error_code ec;
  GDN2_CHECK(fs::is_directory(dir, ec), IoError, "corpus '", dir, "' is not a directory");
  std::vector<CorpusFile> files;
  fs::recursive_directory_iterator it(dir, fs::directory_options::skip_permission_denied, ec), end;
  GDN2_CHECK(!ec, IoError, "corpus '", dir, "': cannot list it: ", ec.message());
  for (; it != end; it.increment(ec)) {
    GDN2_CHECK(!ec, IoError, "corpus '", dir, "': cannot list it: ", ec.message());
    const std::string filename = it->path().filename().string();
    std::error_code fe;
    if (!it->is_regular_file(fe) || !text_name(filename) || boilerplate_name(filename)) continue;
    CorpusFile f;
    f.path = it->path().string();
    f.name = it->path().lexically_relative(dir).generic_string();
    f.bytes = static_cast<uint64_t>(it->file_size(fe));
    files.push_back(std::move(f));
  }
  GDN2_CHECK(!ec, IoError, "corpus '", dir, "': cannot list it: ", ec.message());
  std::sort(files.begin(), files.end(), [](const CorpusFile& a, const CorpusFile& b) {
    const uint64_t ha = fnv1a64(a.name.data(), a.name.size()), hb = fnv1a64(b.name.data(), b.name.size());
    return std::tie(ha, a.name) < std::tie(hb, b.name);
  });
  return files;
}

}  // namespace gdn2
