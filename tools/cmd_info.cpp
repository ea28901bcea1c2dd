// `gdn2 info`: version and the backends this build has, with a device self-test for CUDA.
#include <cstdio>

#include "gdn2/backend.h"
#include "tools/cli.h"

namespace gdn2::cli {

void add_info_command(CLI::App& app, Context& ctx) {
  CLI::App* cmd = app.add_subcommand("info", "print the build and the available backends");
  cmd->callback([&ctx] {
    std::printf("gdn2 %s\n", GDN2_VERSION);
    for (Backend b : {Backend::cpu, Backend::cuda})
      std::printf("  %-5s %s  %s\n", std::string(backend_name(b)).c_str(),
                  backend_available(b) ? "available  " : "unavailable", backend_describe(b).c_str());
    ctx.exit_code = 0;
  });
}

}  // namespace gdn2::cli
