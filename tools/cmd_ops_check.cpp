// `gdn2 ops check FILE`: run the GDN-2 ops on every case of a golden file and report relative RMS errors.
#include <cstdio>
#include <string>

#include "gdn2/ops/gdn2_golden.h"
#include "tools/cli.h"

namespace gdn2::cli {

namespace {

struct CheckArgs {
  std::string file;
  std::string backend = "cpu";
  std::string op = "chunk";
  std::string compute = "f32";
  double budget = 1e-5;
  int chunk_size = 64;
  int threads = 0;
};

int run_check(const CheckArgs& a) {
  const Backend backend = backend_from_name(a.backend);
  const Gdn2CheckOp op = a.op == "ref" ? Gdn2CheckOp::ref : a.op == "recurrent" ? Gdn2CheckOp::recurrent : Gdn2CheckOp::chunk;
  const DType compute = a.compute == "f64" ? DType::f64 : DType::f32;
  set_cpu_threads(a.threads);
  const std::vector<Gdn2GoldenCase> cases = gdn2_golden_read(a.file);
  const std::string op_desc = op == Gdn2CheckOp::chunk ? "chunk (" + a.compute + ", chunk " + std::to_string(a.chunk_size) + ")"
                              : op == Gdn2CheckOp::ref ? std::string("ref (f64)") : std::string("recurrent (f32)");
  std::printf("gdn2 ops check %s: %zu cases, op %s, backend %s, budget %.1e (relative RMS)\n", a.file.c_str(),
              cases.size(), op_desc.c_str(), a.backend.c_str(), a.budget);
  int failed = 0;
  for (const Gdn2GoldenCase& c : cases) {
    const Gdn2CheckResult r = gdn2_golden_check(c, op, backend, compute, a.chunk_size, a.budget);
    std::printf("%-16s %-26s %-5s", r.name.c_str(), r.shape.c_str(), r.mode.c_str());
    for (const auto& [field, err] : r.errors) std::printf("  %s %.2e", field.c_str(), err);
    std::printf("  %s\n", r.pass ? "PASS" : "FAIL");
    failed += r.pass ? 0 : 1;
  }
  std::printf("%s: %zu of %zu cases within %.1e\n", failed ? "FAILED" : "ok", cases.size() - failed, cases.size(),
              a.budget);
  return failed ? 1 : 0;
}

}  // namespace

void add_ops_check_command(CLI::App& ops, Context& ctx) {
  auto a = std::make_shared<CheckArgs>();
  CLI::App* cmd = ops.add_subcommand("check", "check GDN-2 ops against a golden file (gdn2_ops.safetensors format)");
  cmd->add_option("file", a->file, "golden file: cases '<name>.q', '<name>.k', ... (see ops/gdn2_golden.h)")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--backend", a->backend, "cpu or cuda")->check(CLI::IsMember({"cpu", "cuda"}));
  cmd->add_option("--op", a->op, "chunk (forward + backward), recurrent (forward) or ref (fp64 oracle)")
      ->check(CLI::IsMember({"chunk", "recurrent", "ref"}));
  cmd->add_option("--compute", a->compute, "chunk precision: f32 or f64")->check(CLI::IsMember({"f32", "f64"}));
  cmd->add_option("--budget", a->budget, "largest relative RMS error that passes")->check(CLI::PositiveNumber);
  cmd->add_option("--chunk-size", a->chunk_size, "16, 32 or 64")->check(CLI::IsMember({16, 32, 64}));
  cmd->add_option("--threads", a->threads, "CPU threads (0: all)")->check(CLI::Range(0, 4096));
  cmd->callback([a, &ctx] { ctx.exit_code = run_check(*a); });
}

}  // namespace gdn2::cli
