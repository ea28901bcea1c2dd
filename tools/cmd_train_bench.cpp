// `gdn2 train-bench`: training throughput of a model config on random tokens (the end-to-end benchmark's training
// half): full optimizer steps (forward, backward, clipping, AdamW), tokens/s, MFU by the 6N rule and peak memory,
// gated on sane losses. Prints one JSON line and writes it to --json.
#include <cmath>
#include <cstdio>
#include <fstream>

#include <nlohmann/json.hpp>

#include "gdn2/backend.h"
#include "gdn2/distributed.h"
#include "gdn2/model/lm.h"
#include "gdn2/train.h"
#include "tools/cli.h"

namespace gdn2::cli {

namespace {

struct TrainBenchArgs {
  std::string config, json, backend = "cuda";
  int64_t batch = 2, seq_len = 4096, steps = 6, warmup = 3;
  double peak_tflops = 989.0;  // H100 / H200 dense BF16
  int threads = 0;
};

int run_train_bench(const TrainBenchArgs& a) {
  set_cpu_threads(a.threads);
  const Backend backend = backend_from_name(a.backend);
  backend_require(backend);
  const ModelConfig cfg = ModelConfig::load(a.config);
  std::unique_ptr<DataParallel> dp;  // under torchrun / mpirun: every rank runs --batch sequences
  if (const auto env = dist_env_from_environment(); env && env->world > 1) {
    GDN2_CHECK(backend == Backend::cuda, ValueError, "data parallel needs --backend cuda");
    dp = std::make_unique<DataParallel>(*env);
  }
  LanguageModel model(cfg, DType::f32, backend == Backend::cuda ? Device::cuda : Device::cpu);
  model.init_random(0);
  const ThroughputResult r = train_throughput(model, a.batch, a.seq_len, a.warmup, a.steps, 1, dp.get());
  if (dp != nullptr && dp->rank() != 0) return 0;
  // Gate: every loss finite, and the first near log(V) (a fresh model predicts close to uniform).
  const double uniform = std::log(static_cast<double>(cfg.vocab_size));
  bool ok = std::abs(r.losses.front() - uniform) < 0.1 * uniform;
  for (double l : r.losses) ok = ok && std::isfinite(l);
  nlohmann::json j;
  j["config"] = a.config;
  j["backend"] = a.backend;
  j["compute"] = std::string(dtype_name(model.compute_dtype()));
  j["device"] = backend_describe(backend);
  j["params"] = model.num_params();
  j["ranks"] = dp ? dp->world() : 1;
  j["B"] = a.batch;  // per rank
  j["T"] = a.seq_len;
  j["steps"] = a.steps;
  j["step_s"] = r.step_s;
  j["tok_s"] = r.tokens_per_s;
  j["mfu_6N"] = 6.0 * static_cast<double>(model.num_params()) * r.tokens_per_s / (a.peak_tflops * 1e12);
  j["peak_GB"] = static_cast<double>(r.peak_bytes) / 1e9;
  j["loss_first"] = r.losses.front();
  j["loss_last"] = r.losses.back();
  j["ok"] = ok;
  std::printf("%s\n", j.dump().c_str());
  if (!a.json.empty()) std::ofstream(a.json) << j.dump(1) << "\n";
  if (!ok) std::fprintf(stderr, "train-bench: losses not sane (first %.4f, log V %.4f)\n", r.losses.front(), uniform);
  return ok ? 0 : 1;
}

}  // namespace

void add_train_bench_command(CLI::App& app, Context& ctx) {
  auto a = std::make_shared<TrainBenchArgs>();
  CLI::App* cmd = app.add_subcommand("train-bench", "training throughput of a config on random tokens (tokens/s, MFU)");
  cmd->add_option("--config", a->config, "model config.json")->required()->check(CLI::ExistingFile);
  cmd->add_option("--batch", a->batch, "sequences per step")->check(CLI::Range(1, 1 << 16));
  cmd->add_option("--seq-len", a->seq_len, "tokens per sequence")->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--steps", a->steps, "timed steps")->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--warmup", a->warmup, "untimed steps first")->check(CLI::Range(0, 1 << 20));
  cmd->add_option("--backend", a->backend, "cuda or cpu")->check(CLI::IsMember({"cpu", "cuda"}));
  cmd->add_option("--peak-tflops", a->peak_tflops, "the device's dense BF16 peak, for MFU")->check(CLI::PositiveNumber);
  cmd->add_option("--json", a->json, "also write the result here");
  cmd->add_option("--threads", a->threads, "CPU threads (0: all)")->check(CLI::Range(0, 4096));
  cmd->callback([a, &ctx] { ctx.exit_code = run_train_bench(*a); });
}

}  // namespace gdn2::cli
