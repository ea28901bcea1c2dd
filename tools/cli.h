// Subcommand registration for the gdn2 CLI: each cmd_*.cpp adds its commands to the app.
#pragma once

#include <CLI/CLI.hpp>

namespace gdn2::cli {

// What a command reports back to main: its exit status (0 ok, 1 a check failed; errors are exceptions).
struct Context {
  int exit_code = 0;
};

void add_info_command(CLI::App& app, Context& ctx);
void add_ops_check_command(CLI::App& ops, Context& ctx);
void add_ops_bench_command(CLI::App& ops, Context& ctx);
void add_ops_cuda_bench_command(CLI::App& ops, Context& ctx);
void add_model_commands(CLI::App& app, Context& ctx);      // layer check, model check, model info
void add_generate_command(CLI::App& app, Context& ctx);
void add_train_command(CLI::App& app, Context& ctx);
void add_train_bench_command(CLI::App& app, Context& ctx);
void add_infer_bench_command(CLI::App& app, Context& ctx);
void add_data_commands(CLI::App& app, Context& ctx);
void add_ops_attn_bench_command(CLI::App& ops, Context& ctx);
void add_tokenizer_command(CLI::App& app, Context& ctx);

}  // namespace gdn2::cli
