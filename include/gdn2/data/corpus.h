// The training corpus: where the installed text lives, how its files are cleaned, and documents read in order.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace gdn2 {

// The corpus is the reStructuredText source of the Python documentation, from Debian's `python3-doc` package
// (installed by scripts/get_corpus.sh) in /usr/share/doc/python3.<minor>/html/_sources. See docs/data.md.
inline constexpr std::string_view kCorpusPackage = "python3-doc";
inline constexpr std::string_view kCorpusEnvVar = "GDN2_CORPUS_DIR";

// The corpus directory: `dir` when not empty, else $GDN2_CORPUS_DIR when set and not empty, else the `_sources`
// folder of the newest installed Python documentation (in /usr/share/doc, else where scripts/get_corpus.sh unpacks
// it when dpkg skips docs: $XDG_CACHE_HOME/gdn2/corpus/usr/share/doc or ~/.cache/...). nullopt when the chosen
// place is not a directory; never throws.
std::optional<std::string> corpus_find(const std::string& dir = "");
// The same, but a missing corpus throws IoError naming the place looked at and how to install it.
std::string corpus_dir(const std::string& dir = "");

// One text file of the corpus: its path and its name relative to the corpus directory.
struct CorpusFile {
  std::string path;
  std::string name;
  uint64_t bytes = 0;
};

// The text files under `dir`, recursively: names ending in .txt, .rst or .md, less licence and copyright files
// (file stem "license", "licence" or "copyright", any case). They come in a fixed pseudo-random order, the FNV-1a
// hash of the relative name (ties by name), that mixes topics and is the same on every machine.
// IoError when `dir` is not a readable directory.
std::vector<CorpusFile> corpus_files(const std::string& dir);

// Cleaning. Each function is pure and total (any bytes in, valid UTF-8 out for normalize_text).
// normalize_text: drops a UTF-8 byte-order mark, turns CRLF and lone CR into LF, replaces invalid UTF-8 with U+FFFD,
// drops C0 control characters other than LF and tab (and DEL), strips trailing blanks from every line, collapses
// runs of blank lines to one, and drops leading and trailing blank lines. The result never holds "\n\n\n" and
// does not end with a newline.
std::string normalize_text(std::string_view raw);
// strip_gutenberg: when the text has a Project Gutenberg "*** START OF ..." line, drops it and all before it; when it
// has a "*** END OF ..." (or "End of [the] Project Gutenberg ...") line, drops it and all after. Else unchanged.
std::string strip_gutenberg(std::string_view text);
// rst_to_text: reStructuredText to plain prose: section adornments, comments, targets and index/toctree-like
// directives go; roles and inline markup keep their text (:func:`len` -> len(), ``x`` -> x, `a <url>`_ -> a);
// admonitions and version notes become sentences ("Note:", "New in version 3.2."); literal blocks are kept
// verbatim, indented by four spaces. Not a full reST parser: a best effort for documentation prose.
std::string rst_to_text(std::string_view rst);
// By name: .rst and .rst.txt files go through rst_to_text, others through strip_gutenberg; then normalize_text.
std::string clean_document(std::string_view raw, std::string_view name);

struct CorpusOptions {
  // Cleaned bytes to read at most (0: everything). Documents are taken whole, in corpus_files order, skipping any
  // that would overflow the budget: a deterministic subset.
  uint64_t max_bytes = 0;
};

// Reads the corpus one cleaned document (one file) at a time, in corpus_files order; empty documents are skipped.
class CorpusReader {
 public:
  explicit CorpusReader(const std::string& dir, CorpusOptions options = {});
  // The next document and (optionally) its file name; false at the end. IoError if a file cannot be read.
  bool next(std::string& document, std::string* name = nullptr);
  const std::vector<CorpusFile>& files() const { return files_; }
  uint64_t bytes_read() const { return bytes_; }        // cleaned bytes handed out so far
  int64_t documents_read() const { return documents_; }  // documents handed out so far

 private:
  std::vector<CorpusFile> files_;
  CorpusOptions options_;
  size_t next_file_ = 0;
  uint64_t bytes_ = 0;
  int64_t documents_ = 0;
};

// Every document of the corpus at `dir` (see CorpusReader).
std::vector<std::string> corpus_read_all(const std::string& dir, CorpusOptions options = {});

// The corpus text file (`gdn2 data corpus --out FILE`): documents joined by kDocSeparator, two blank lines, which a
// cleaned document never holds; the file ends with one newline. corpus_write writes it atomically; a document
// holding the separator, or empty, is a ValueError. corpus_split inverts the join (empty pieces are dropped).
inline constexpr std::string_view kDocSeparator = "\n\n\n";
void corpus_write(const std::string& path, const std::vector<std::string>& documents);
std::vector<std::string> corpus_split(std::string_view text);
std::vector<std::string> corpus_read_file(const std::string& path);  // IoError if unreadable

}  // namespace gdn2
