// `gdn2 data info DIR`: validates a token dataset and prints its shards, token and document counts and split sizes.
#include <cstdio>
#include <string>

#include "gdn2/data/dataset.h"
#include "tools/cmd_data.h"

namespace gdn2::cli {

namespace {

struct InfoArgs {
  std::string dir;
  bool no_checksum = false;
};

void print_shard(const TokenShard& s) {
  const std::string name = s.path().substr(s.path().find_last_of('/') + 1);
  std::printf("  %-16s %12lld tokens %9lld documents  u%u\n", name.c_str(), static_cast<long long>(s.size()),
              static_cast<long long>(s.documents()), s.header().token_bytes * 8);
}

int run_info(const InfoArgs& a) {
  const TokenDataset d = TokenDataset::open(a.dir, !a.no_checksum);
  std::printf("token dataset %s: vocab_size %u, eos_id %u, checksums %s\n", a.dir.c_str(), d.vocab_size(), d.eos_id(),
              a.no_checksum ? "not verified" : "verified");
  for (const TokenShard& s : d.train_shards()) print_shard(s);
  print_shard(d.val_shard());
  const long long train = d.train_tokens(), val = d.val_shard().size();
  const double total = static_cast<double>(train + val);
  std::printf("train: %zu shards, %lld tokens, %lld documents\n", d.train_shards().size(), train,
              static_cast<long long>(d.train_documents()));
  std::printf("val:   1 shard, %lld tokens, %lld documents (%.2f%% of tokens)\n", val,
              static_cast<long long>(d.val_shard().documents()), total > 0 ? 100.0 * val / total : 0.0);
  return 0;
}

}  // namespace

void add_data_info_command(CLI::App& data, Context& ctx) {
  auto a = std::make_shared<InfoArgs>();
  CLI::App* cmd = data.add_subcommand("info", "validate a token dataset (train_*.bin, val.bin) and print its sizes");
  cmd->add_option("dir", a->dir, "dataset directory written by data_prepare")->required();
  cmd->add_flag("--no-checksum", a->no_checksum, "skip the payload checksums (ids and lengths are still checked)");
  cmd->callback([a, &ctx] { ctx.exit_code = run_info(*a); });
}

}  // namespace gdn2::cli
