// `gdn2 data prepare`: tokenize a corpus text file with a tokenizer.json into train and held-out token shards.
#include <chrono>
#include <cstdio>

#include "gdn2/backend.h"
#include "gdn2/error.h"
#include "gdn2/data/corpus.h"
#include "gdn2/data/prepare.h"
#include "gdn2/tokenizer.h"
#include "tools/cmd_data.h"

namespace gdn2::cli {

namespace {

struct PrepareArgs {
  std::string corpus, tokenizer, out;
  int64_t val_every = 20;
  int threads = 0;
};

int run_prepare(const PrepareArgs& a) {
  set_cpu_threads(a.threads);
  const auto t0 = std::chrono::steady_clock::now();
  const std::vector<std::string> docs = corpus_read_file(a.corpus);
  const Tokenizer tok = Tokenizer::from_file(a.tokenizer);
  const std::optional<int32_t> eos = tok.eos_id();
  GDN2_CHECK(eos.has_value(), ValueError, a.tokenizer,
             ": the tokenizer has no end-of-text token to separate documents; train it with --special \"<|endoftext|>\"");
  PrepareOptions o;
  o.vocab_size = static_cast<uint32_t>(tok.vocab_size());
  o.eos_id = static_cast<uint32_t>(*eos);
  o.val_every = a.val_every;
  const PrepareStats s = data_prepare(docs, [&tok](std::string_view text) { return tok.encode(text); }, a.out, o);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("prepared %s: %ld documents -> %ld train tokens in %ld shard(s), %ld held-out tokens (%.1f s)\n",
              a.out.c_str(), static_cast<long>(docs.size()), static_cast<long>(s.train_tokens),
              static_cast<long>(s.files.size() - 1), static_cast<long>(s.val_tokens), secs);
  return 0;
}

}  // namespace

void add_data_prepare_command(CLI::App& data, Context& ctx) {
  auto a = std::make_shared<PrepareArgs>();
  CLI::App* cmd = data.add_subcommand("prepare", "tokenize a corpus file into train and held-out shards");
  cmd->add_option("--corpus", a->corpus, "corpus text (gdn2 data corpus --out)")->required()->check(CLI::ExistingFile);
  cmd->add_option("--tokenizer", a->tokenizer, "tokenizer.json")->required()->check(CLI::ExistingFile);
  cmd->add_option("--out", a->out, "output directory for train_*.bin and val.bin")->required();
  cmd->add_option("--val-every", a->val_every, "hold out every n-th document (0: none)")->check(CLI::Range(0, 1 << 30));
  cmd->add_option("--threads", a->threads, "CPU threads (0: all)")->check(CLI::Range(0, 4096));
  cmd->callback([a, &ctx] { ctx.exit_code = run_prepare(*a); });
}

}  // namespace gdn2::cli
