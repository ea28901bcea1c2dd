// `gdn2 data`: the corpus and token-dataset commands and `data prepare`, which tokenizes with a tokenizer.json.
#include "tools/cmd_data.h"

namespace gdn2::cli {

void add_data_commands(CLI::App& app, Context& ctx) {
  CLI::App* data = app.add_subcommand("data", "training data: the corpus text and token shard datasets");
  data->require_subcommand(1);
  add_data_info_command(*data, ctx);
  add_data_corpus_command(*data, ctx);
  add_data_prepare_command(*data, ctx);
}

}  // namespace gdn2::cli
