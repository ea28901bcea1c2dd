// `gdn2 data corpus`: where the installed corpus is, and its cleaned text as one file for tokenizer training.
#include <cstdio>
#include <string>

#include "gdn2/data/corpus.h"
#include "gdn2/error.h"
#include "tools/cmd_data.h"

namespace gdn2::cli {

namespace {

struct CorpusArgs {
  std::string dir;
  std::string out;
  double max_mb = 0;
  bool where = false;
};

int run_corpus(const CorpusArgs& a) {
  const std::string dir = corpus_dir(a.dir);
  const std::vector<CorpusFile> files = corpus_files(dir);
  uint64_t bytes = 0;
  for (const CorpusFile& f : files) bytes += f.bytes;
  std::printf("corpus %s: %zu text files, %.1f MiB raw\n", dir.c_str(), files.size(), bytes / 1048576.0);
  if (a.where) return 0;
  GDN2_CHECK(!a.out.empty(), ValueError, "data corpus: give --out FILE (or --where)");
  CorpusOptions options;
  options.max_bytes = static_cast<uint64_t>(a.max_mb * 1048576.0);
  CorpusReader reader(dir, options);
  std::vector<std::string> docs;
  std::string doc;
  while (reader.next(doc)) docs.push_back(std::move(doc));
  corpus_write(a.out, docs);
  std::printf("wrote %s: %zu documents, %.2f MiB of cleaned text, documents separated by two blank lines\n",
              a.out.c_str(), docs.size(), reader.bytes_read() / 1048576.0);
  return 0;
}

}  // namespace

void add_data_corpus_command(CLI::App& data, Context& ctx) {
  auto a = std::make_shared<CorpusArgs>();
  CLI::App* cmd = data.add_subcommand("corpus", "locate the installed corpus; write its cleaned text to one file");
  cmd->add_option("--out", a->out, "output text file: documents joined by two blank lines (see docs/data.md)");
  cmd->add_option("--max-mb", a->max_mb, "at most this many MiB of cleaned text (0: all); whole documents")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--dir", a->dir, "corpus directory (default: $GDN2_CORPUS_DIR, else the installed python3-doc)");
  cmd->add_flag("--where", a->where, "only print where the corpus is and its size");
  cmd->callback([a, &ctx] { ctx.exit_code = run_corpus(*a); });
}

}  // namespace gdn2::cli
