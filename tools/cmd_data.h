// The `gdn2 data` subcommands: each cmd_data_*.cpp adds one to the `data` group made in cmd_data.cpp.
#pragma once

#include "tools/cli.h"

namespace gdn2::cli {

void add_data_info_command(CLI::App& data, Context& ctx);
void add_data_corpus_command(CLI::App& data, Context& ctx);
void add_data_prepare_command(CLI::App& data, Context& ctx);

}  // namespace gdn2::cli
