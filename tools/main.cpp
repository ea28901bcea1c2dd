// The gdn2 command line: registers the subcommands; library errors become messages and exit code 2.
#include <cstdio>
#include <exception>

#include "gdn2/error.h"
#include "tools/cli.h"

int main(int argc, char** argv) {
  CLI::App app{"gdn2: the Gated DeltaNet-2 engine"};
  app.require_subcommand(1);
  gdn2::cli::Context ctx;
  gdn2::cli::add_info_command(app, ctx);
  CLI::App* ops = app.add_subcommand("ops", "GDN-2 ops: check against golden files, benchmark");
  ops->require_subcommand(1);
  gdn2::cli::add_ops_check_command(*ops, ctx);
  gdn2::cli::add_ops_bench_command(*ops, ctx);
  gdn2::cli::add_ops_cuda_bench_command(*ops, ctx);
  gdn2::cli::add_model_commands(app, ctx);
  gdn2::cli::add_generate_command(app, ctx);
  gdn2::cli::add_train_command(app, ctx);
  gdn2::cli::add_train_bench_command(app, ctx);
  gdn2::cli::add_infer_bench_command(app, ctx);
  gdn2::cli::add_data_commands(app, ctx);
  gdn2::cli::add_ops_attn_bench_command(*ops, ctx);
  gdn2::cli::add_tokenizer_command(app, ctx);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const gdn2::Error& e) {
    std::fprintf(stderr, "gdn2: error: %s\n", e.what());
    return 2;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "gdn2: error: out of memory\n");
    return 2;
  }
  return ctx.exit_code;
}
