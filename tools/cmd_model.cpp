// `gdn2 layer check FILE`, `gdn2 model check DIR`, `gdn2 model info DIR`: reference checks and model summaries.
#include <cstdio>

#include "gdn2/model/checkpoint.h"
#include "gdn2/model/golden.h"
#include "tools/cli.h"

namespace gdn2::cli {

namespace {

int report(const GoldenCheck& r, double budget, const char* unit) {
  std::printf("%s\n", r.what.c_str());
  for (const auto& [field, err] : r.errors) std::printf("  %-44s %.3e\n", field.c_str(), err);
  std::printf("%s (budget %.1e %s)\n", r.pass ? "PASS" : "FAIL", budget, unit);
  return r.pass ? 0 : 1;
}

}  // namespace

void add_model_commands(CLI::App& app, Context& ctx) {
  CLI::App* layer = app.add_subcommand("layer", "check a single layer against a reference");
  layer->require_subcommand(1);
  CLI::App* lcheck = layer->add_subcommand("check", "run gdn2's GDN-2 layer on an fla reference file and compare");
  auto lfile = std::make_shared<std::string>();
  auto lbudget = std::make_shared<double>(5e-3);
  lcheck->add_option("file", *lfile, "fla layer file (format of tests/data/fla_gdn2_layer.safetensors)")
      ->required()
      ->check(CLI::ExistingFile);
  lcheck->add_option("--budget", *lbudget, "largest relative RMS error that passes")->check(CLI::PositiveNumber);
  lcheck->callback([&ctx, lfile, lbudget] {
    ctx.exit_code = report(fla_layer_check(*lfile, *lbudget), *lbudget, "relative RMS");
  });

  CLI::App* model = app.add_subcommand("model", "load and check HF-format model directories");
  model->require_subcommand(1);
  CLI::App* mcheck = model->add_subcommand("check", "load DIR; with DIR/expected.safetensors check logits and greedy tokens");
  auto mdir = std::make_shared<std::string>();
  auto mbudget = std::make_shared<double>(1e-4);
  mcheck->add_option("dir", *mdir, "model directory (config.json + safetensors)")->required()->check(CLI::ExistingDirectory);
  mcheck->add_option("--budget", *mbudget, "largest relative RMS error of the logits")->check(CLI::PositiveNumber);
  mcheck->callback([&ctx, mdir, mbudget] {
    ctx.exit_code = report(model_check(*mdir, *mbudget), *mbudget, "relative RMS for logits; greedy tokens exact");
  });
  CLI::App* minfo = model->add_subcommand("info", "print a model directory's configuration and size");
  auto idir = std::make_shared<std::string>();
  minfo->add_option("dir", *idir, "model directory")->required()->check(CLI::ExistingDirectory);
  minfo->callback([&ctx, idir] {
    std::printf("%s\n", ModelConfig::load(*idir + "/config.json").describe().c_str());
    ctx.exit_code = 0;
  });
}

}  // namespace gdn2::cli
