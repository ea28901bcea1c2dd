// `gdn2 infer-bench`: prefill throughput and batched decode speed of a model config on random tokens (the end-to-end
// benchmark's serving half), gated on finite logits. Prints one JSON line per batch size and writes them to --json.
#include <cstdio>
#include <fstream>

#include <nlohmann/json.hpp>

#include "gdn2/backend.h"
#include "gdn2/generate.h"
#include "tools/cli.h"

namespace gdn2::cli {

namespace {

struct InferBenchArgs {
  std::string config, json, backend = "cuda", state_dtype = "f32";
  std::vector<int64_t> batches{1};
  int64_t prompt = 512, steps = 32, prefill_chunk = 0;
  int threads = 0;
  bool no_graphs = false;
};

int run_infer_bench(const InferBenchArgs& a) {
  set_cpu_threads(a.threads);
  const Backend backend = backend_from_name(a.backend);
  backend_require(backend);
  const ModelConfig cfg = ModelConfig::load(a.config);
  LanguageModel model(cfg, DType::f32, backend == Backend::cuda ? Device::cuda : Device::cpu);
  model.init_random(0);
  nlohmann::json all = nlohmann::json::array();
  bool ok = true;
  // The copy bandwidth bounds a decode step from below: step_bytes / bandwidth.
  const double gbps = backend == Backend::cuda ? cuda_copy_gbps() : 0.0;
  for (int64_t B : a.batches) {
    const InferThroughput r = infer_throughput(model, B, a.prompt, a.steps, a.prefill_chunk, 1, !a.no_graphs,
                                               a.state_dtype == "bf16" ? DType::bf16 : DType::f32);
    nlohmann::json j{{"config", a.config},
                     {"backend", a.backend},
                     {"compute", std::string(dtype_name(model.compute_dtype()))},
                     {"params", model.num_params()},
                     {"B", B},
                     {"prompt", a.prompt},
                     {"prefill_chunk", a.prefill_chunk},
                     {"prefill_s", r.prefill_s},
                     {"prefill_cold_s", r.prefill_cold_s},
                     {"prefill_tok_s", r.prefill_tokens_per_s},
                     {"decode_ms_per_step", r.decode_ms_per_step},
                     {"decode_tok_s", r.decode_tokens_per_s},
                     {"cuda_graphs", r.cuda_graphs},
                     {"state_dtype", a.state_dtype},
                     {"state_MB", static_cast<double>(r.state_bytes) / 1e6},
                     {"step_MB", static_cast<double>(r.step_bytes) / 1e6},
                     {"peak_GB", static_cast<double>(r.peak_bytes) / 1e9},
                     {"ok", r.finite}};
    if (gbps > 0) {  // the step's least traffic over the time it took, as a fraction of the copy bandwidth
      j["copy_GBps"] = gbps;
      j["roofline_fraction"] = static_cast<double>(r.step_bytes) / (gbps * 1e6 * r.decode_ms_per_step);
    }
    ok = ok && r.finite;
    std::printf("%s\n", j.dump().c_str());
    std::fflush(stdout);
    all.push_back(j);
  }
  if (!a.json.empty()) std::ofstream(a.json) << all.dump(1) << "\n";
  if (!ok) std::fprintf(stderr, "infer-bench: non-finite logits\n");
  return ok ? 0 : 1;
}

}  // namespace

void add_infer_bench_command(CLI::App& app, Context& ctx) {
  auto a = std::make_shared<InferBenchArgs>();
  CLI::App* cmd = app.add_subcommand("infer-bench", "prefill and batched decode speed of a config on random tokens");
  cmd->add_option("--config", a->config, "model config.json")->required()->check(CLI::ExistingFile);
  cmd->add_option("--batch", a->batches, "batch sizes (several: one row each)")->check(CLI::Range(1, 1 << 16));
  cmd->add_option("--prompt", a->prompt, "prompt tokens per sequence")->check(CLI::Range(1, 1 << 22));
  cmd->add_option("--steps", a->steps, "decode steps (the first is warmup)")->check(CLI::Range(2, 1 << 20));
  cmd->add_option("--prefill-chunk", a->prefill_chunk, "prefill in pieces of this many tokens (0: whole)")
      ->check(CLI::Range(0, 1 << 22));
  cmd->add_option("--backend", a->backend, "cuda or cpu")->check(CLI::IsMember({"cpu", "cuda"}));
  cmd->add_option("--json", a->json, "also write the rows here");
  cmd->add_option("--threads", a->threads, "CPU threads (0: all)")->check(CLI::Range(0, 4096));
  cmd->add_flag("--no-cuda-graphs", a->no_graphs, "decode steps launched op by op instead of replayed graphs");
  cmd->add_option("--state-dtype", a->state_dtype, "the decode slots' recurrent states: f32, or bf16 on the GPU")
      ->check(CLI::IsMember({"f32", "bf16"}));
  cmd->callback([a, &ctx] { ctx.exit_code = run_infer_bench(*a); });
}

}  // namespace gdn2::cli
