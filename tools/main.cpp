// The gdn2 command line: subcommands register themselves here; errors become messages and exit codes.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>

#include "gdn2/error.h"

int main(int argc, char** argv) {
  CLI::App app{"gdn2: the Gated DeltaNet-2 engine"};
  app.require_subcommand(1);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const gdn2::Error& e) {
    std::fprintf(stderr, "gdn2: error: %s\n", e.what());
    return 2;
  }
  return 0;
}
