// `gdn2 tokenizer train|encode|decode`: train a byte-level BPE tokenizer, encode text to ids, decode ids to text.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "gdn2/error.h"
#include "gdn2/tokenizer.h"
#include "tools/cli.h"

namespace gdn2::cli {

namespace {

std::string read_whole(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) GDN2_THROW(IoError, "cannot open ", path);
  std::ostringstream os;
  os << in.rdbuf();
  if (in.bad()) GDN2_THROW(IoError, "cannot read ", path);
  return os.str();
}

// Cuts `text` after a newline about every `chunk` bytes, so that word counting can run in parallel.
void append_chunks(const std::string& text, size_t chunk, std::vector<std::string>& out) {
  size_t begin = 0;
  while (begin < text.size()) {
    size_t end = begin + chunk;
    if (end >= text.size()) {
      end = text.size();
    } else {
      const size_t nl = text.find('\n', end);
      end = nl == std::string::npos ? text.size() : nl + 1;
    }
    out.push_back(text.substr(begin, end - begin));
    begin = end;
  }
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

struct TrainArgs {
  std::vector<std::string> inputs;
  int vocab_size = 0;
  std::string out;
  std::vector<std::string> specials;
};

int run_train(const TrainArgs& a) {
  // Create the output folder first, so that a bad --out fails before the training, not after.
  const std::filesystem::path dir = std::filesystem::path(a.out).parent_path();
  std::error_code ec;
  if (!dir.empty()) std::filesystem::create_directories(dir, ec);
  if (ec) GDN2_THROW(IoError, "cannot create the folder of --out ", a.out, ": ", ec.message());
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::string> texts;
  size_t bytes = 0;
  for (const std::string& path : a.inputs) {
    const std::string text = read_whole(path);
    bytes += text.size();
    append_chunks(text, size_t{1} << 20, texts);
  }
  const double t_read = seconds_since(t0);
  const Tokenizer tok = tokenizer_train_bpe(texts, a.vocab_size, a.specials);
  const double t_train = seconds_since(t0) - t_read;
  tok.save(a.out);
  std::printf("trained on %zu bytes (%zu file(s), %zu chunks): vocab %d (asked %d) in %.2f s (read %.2f s); wrote %s\n",
              bytes, a.inputs.size(), texts.size(), tok.vocab_size(), a.vocab_size, t_train, t_read, a.out.c_str());
  return 0;
}

struct EncodeArgs {
  std::string tokenizer;
  std::string text;
  std::string input;
  bool count_only = false;
};

int run_encode(const EncodeArgs& a) {
  const Tokenizer tok = Tokenizer::from_file(a.tokenizer);
  if (!a.input.empty()) {
    const std::string text = read_whole(a.input);
    std::vector<std::string> docs;
    append_chunks(text, size_t{1} << 20, docs);
    const auto t0 = std::chrono::steady_clock::now();
    const auto ids = tok.encode_batch(docs);
    const double secs = seconds_since(t0);
    size_t n = 0;
    for (const auto& d : ids) n += d.size();
    if (a.count_only) {
      std::printf("%zu tokens from %zu bytes in %.3f s (%.1f MB/s)\n", n, text.size(), secs,
                  static_cast<double>(text.size()) / 1e6 / (secs > 0 ? secs : 1e-9));
      return 0;
    }
    for (const auto& d : ids)
      for (int32_t id : d) std::printf("%d\n", id);
    return 0;
  }
  const std::vector<int32_t> ids = tok.encode(a.text);
  if (a.count_only) {
    std::printf("%zu\n", ids.size());
    return 0;
  }
  for (size_t i = 0; i < ids.size(); ++i) std::printf(i ? " %d" : "%d", ids[i]);
  std::printf("\n");
  return 0;
}

struct DecodeArgs {
  std::string tokenizer;
  std::vector<int32_t> ids;
  bool skip_special = false;
};

int run_decode(const DecodeArgs& a) {
  const Tokenizer tok = Tokenizer::from_file(a.tokenizer);
  const std::string text = tok.decode(a.ids, a.skip_special);
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::printf("\n");
  return 0;
}

}  // namespace

void add_tokenizer_command(CLI::App& app, Context& ctx) {
  CLI::App* group = app.add_subcommand("tokenizer", "byte-level BPE tokenizers (HF tokenizer.json): train, encode, decode");
  group->require_subcommand(1);

  auto t = std::make_shared<TrainArgs>();
  CLI::App* train = group->add_subcommand("train", "train a byte-level BPE tokenizer (GPT-2 pre-tokenization)");
  train->add_option("--input", t->inputs, "UTF-8 text files")->required()->check(CLI::ExistingFile);
  train->add_option("--vocab-size", t->vocab_size, "vocab size: special tokens + 256 bytes + merges")
      ->required()
      ->check(CLI::Range(256, 1 << 24));
  train->add_option("--out", t->out, "tokenizer.json to write (atomically)")->required();
  train->add_option("--special", t->specials, "special token, given the next id (repeatable)");
  train->callback([t, &ctx] { ctx.exit_code = run_train(*t); });

  auto e = std::make_shared<EncodeArgs>();
  CLI::App* enc = group->add_subcommand("encode", "print the token ids of a text (or of a file with --input)");
  enc->add_option("--tokenizer", e->tokenizer, "tokenizer.json")->required()->check(CLI::ExistingFile);
  enc->add_option("text", e->text, "text to encode");
  enc->add_option("--input", e->input, "encode this file instead (one id per line)")->check(CLI::ExistingFile);
  enc->add_flag("--count", e->count_only, "print only the number of tokens (and the speed, with --input)");
  enc->callback([e, &ctx] { ctx.exit_code = run_encode(*e); });

  auto d = std::make_shared<DecodeArgs>();
  CLI::App* dec = group->add_subcommand("decode", "print the text of token ids");
  dec->add_option("--tokenizer", d->tokenizer, "tokenizer.json")->required()->check(CLI::ExistingFile);
  dec->add_option("ids", d->ids, "token ids")->required();
  dec->add_flag("--skip-special", d->skip_special, "leave out special tokens");
  dec->callback([d, &ctx] { ctx.exit_code = run_decode(*d); });
}

}  // namespace gdn2::cli
