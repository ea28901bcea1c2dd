// Reading the corpus document by document, and the corpus text file that joins documents with two blank lines.
#include <fstream>
#include <sstream>

#include "gdn2/atomic_file.h"
#include "gdn2/data/corpus.h"
#include "gdn2/error.h"

namespace gdn2 {

namespace {

std::string read_whole_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  GDN2_CHECK(in.good(), IoError, "cannot open '", path, "'");
  std::ostringstream os;
  os << in.rdbuf();
  GDN2_CHECK(!in.bad(), IoError, "cannot read '", path, "'");
  return os.str();
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

}  // namespace

std::string clean_document(std::string_view raw, std::string_view name) {
  const std::string text = normalize_text(raw);
  if (ends_with(name, ".rst") || ends_with(name, ".rst.txt")) return normalize_text(rst_to_text(text));
  return normalize_text(strip_gutenberg(text));
}

CorpusReader::CorpusReader(const std::string& dir, CorpusOptions options)
    : files_(corpus_files(dir)), options_(options) {}

bool CorpusReader::next(std::string& document, std::string* name) {
  while (next_file_ < files_.size()) {
    const CorpusFile& f = files_[next_file_++];
    std::string doc = clean_document(read_whole_file(f.path), f.name);
    if (doc.empty()) continue;
    if (options_.max_bytes > 0 && bytes_ + doc.size() > options_.max_bytes) continue;  // does not fit: skip it
    bytes_ += doc.size();
    documents_ += 1;
    document = std::move(doc);
    if (name != nullptr) *name = f.name;
    return true;
  }
  return false;
}

std::vector<std::string> corpus_read_all(const std::string& dir, CorpusOptions options) {
  CorpusReader reader(dir, options);
  std::vector<std::string> docs;
  std::string doc;
  while (reader.next(doc)) docs.push_back(std::move(doc));
  return docs;
}

void corpus_write(const std::string& path, const std::vector<std::string>& documents) {
  for (size_t i = 0; i < documents.size(); ++i) {
    const std::string& d = documents[i];
    GDN2_CHECK(!d.empty() && d.front() != '\n' && d.back() != '\n' && d.find(kDocSeparator) == std::string::npos,
               ValueError, "corpus_write: document ", i,
               " is empty, starts or ends with a newline, or holds two blank lines in a row (clean it first)");
  }
  atomic_write_file(path, [&](std::FILE* f) {
    for (size_t i = 0; i < documents.size(); ++i) {
      if (i > 0) write_all(f, kDocSeparator.data(), kDocSeparator.size(), "corpus separator");
      write_all(f, documents[i].data(), documents[i].size(), "corpus document");
    }
    if (!documents.empty()) write_all(f, "\n", 1, "corpus end");
  });
}

std::vector<std::string> corpus_split(std::string_view text) {
  std::vector<std::string> docs;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find(kDocSeparator, start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view piece = text.substr(start, end - start);
    while (!piece.empty() && piece.front() == '\n') piece.remove_prefix(1);
    while (!piece.empty() && piece.back() == '\n') piece.remove_suffix(1);
    if (!piece.empty()) docs.emplace_back(piece);
    start = end + kDocSeparator.size();
  }
  return docs;
}

std::vector<std::string> corpus_read_file(const std::string& path) { return corpus_split(read_whole_file(path)); }

}  // namespace gdn2
