// `gdn2 ops bench`: CPU timings of the GDN-2 ops, gated on correctness against the fp64 oracle, with ratios.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "gdn2/atomic_file.h"
#include "gdn2/backend.h"
#include "gdn2/ops/gdn2_random.h"
#include "tools/cli.h"
#include "gdn2_stamp.h"  // GDN2_GIT_COMMIT, GDN2_SOURCE_HASH (generated at build time)

namespace gdn2::cli {

namespace {

struct BenchArgs {
  int64_t B = 1, T = 4096, H = 4, HV = 0, K = 128, V = 128;
  std::string mode = "gdn2";
  int reps = 5;
  int threads = 0;
  bool backward = true;
  double budget = 1e-5;
  std::string json;
};

template <class F>
double median_seconds(int reps, F&& f) {
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

std::string cpu_model() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown CPU";
}

double worst_grad_error(const Gdn2Grads& g, const Gdn2Grads& ref) {
  double worst = 0;
  const std::pair<const Tensor*, const Tensor*> pairs[] = {{&g.dq, &ref.dq}, {&g.dk, &ref.dk}, {&g.dv, &ref.dv},
                                                           {&g.dg, &ref.dg}, {&g.db, &ref.db}, {&g.dw, &ref.dw},
                                                           {&g.dh0, &ref.dh0}};
  for (const auto& [a, b] : pairs)
    if (a->defined() && b->defined()) worst = std::max(worst, rel_rms_error(*a, *b));
  return worst;
}

int run_bench(const BenchArgs& a, const std::string& command) {
  set_cpu_threads(a.threads);
  const int threads = cpu_threads();
  Gdn2RandomSpec spec;
  spec.B = a.B, spec.T = a.T, spec.H = a.H, spec.HV = a.HV ? a.HV : a.H, spec.K = a.K, spec.V = a.V;
  if (a.mode == "kda") spec.b_form = spec.w_form = "head";
  if (a.mode == "gdn") spec.g_form = spec.b_form = spec.w_form = "head";
  if (a.mode == "ssd") spec.b_form = spec.w_form = "none";
  const Gdn2Inputs in = gdn2_random_inputs(spec);
  const Gdn2Options opt = gdn2_random_options(spec);
  const double token_heads = static_cast<double>(spec.tokens() * spec.HV);
  std::printf("gdn2 ops bench: B%ld T%ld H%ld HV%ld K%ld V%ld, %s gates, q/k L2-normalised in the op\n", spec.B,
              spec.T, spec.H, spec.HV, spec.K, spec.V, a.mode.c_str());
  std::printf("machine: %s; %s\n\n", cpu_model().c_str(), backend_describe(Backend::cpu).c_str());

  Gdn2Outputs ref;
  const double t_ref = median_seconds(1, [&] { ref = gdn2_recurrent_ref(in, opt); });
  Gdn2Outputs chunk, rec;
  gdn2_chunk_fwd(in, opt);  // warm-up: allocations, page faults
  const double t_chunk = median_seconds(a.reps, [&] { chunk = gdn2_chunk_fwd(in, opt); });
  const double err_chunk = std::max(rel_rms_error(chunk.o, ref.o), rel_rms_error(chunk.ht, ref.ht));
  set_cpu_threads(1);
  const double t_chunk1 = median_seconds(a.reps, [&] { gdn2_chunk_fwd(in, opt); });
  set_cpu_threads(a.threads);
  const double t_rec = median_seconds(a.reps, [&] { rec = gdn2_recurrent(in, opt); });
  const double err_rec = std::max(rel_rms_error(rec.o, ref.o), rel_rms_error(rec.ht, ref.ht));

  double t_ref_bwd = 0, t_bwd = 0, err_bwd = 0;
  if (a.backward) {
    const auto [d_o, dht] = gdn2_random_cotangents(spec, 7);
    Gdn2Grads gref, g;
    t_ref_bwd = median_seconds(1, [&] { gref = gdn2_recurrent_ref_bwd(in, opt, d_o, dht); });
    t_bwd = median_seconds(std::max(1, a.reps / 2), [&] { g = gdn2_chunk_bwd(in, opt, d_o, dht); });
    err_bwd = worst_grad_error(g, gref);
  }

  auto row = [&](const char* what, double s, double err, const char* note) {
    std::printf("  %-34s %9.2f ms  %8.3f Mtok-head/s", what, s * 1e3, token_heads / s / 1e6);
    if (err >= 0) std::printf("  err %.1e %s", err, err <= a.budget ? "ok  " : "FAIL");
    std::printf("  %s\n", note);
  };
  row("recurrent_ref fp64 (oracle)", t_ref, -1, "1 thread");
  row("chunk_fwd fp32, chunk 64", t_chunk, err_chunk, (std::to_string(threads) + " threads").c_str());
  row("chunk_fwd fp32, chunk 64", t_chunk1, -1, "1 thread");
  row("recurrent fp32", t_rec, err_rec, (std::to_string(threads) + " threads").c_str());
  if (a.backward) {
    row("recurrent_ref_bwd fp64 (oracle)", t_ref_bwd, -1, "1 thread");
    row("chunk_bwd fp32", t_bwd, err_bwd, (std::to_string(threads) + " threads; worst gradient").c_str());
  }
  const bool ok = err_chunk <= a.budget && err_rec <= a.budget && (!a.backward || err_bwd <= a.budget);
  if (!ok) {
    std::printf("\nFAILED: an op is outside the %.1e budget; no speedups are reported\n", a.budget);
    return 1;
  }
  std::printf("\nchunk_fwd vs fp64 oracle: %.1fx faster (target >= 5x); thread scaling %.2fx on %d threads\n",
              t_ref / t_chunk, t_chunk1 / t_chunk, threads);
  if (a.backward) std::printf("chunk_bwd vs fp64 oracle backward: %.1fx faster\n", t_ref_bwd / t_bwd);

  if (!a.json.empty()) {
    nlohmann::json rows = nlohmann::json::array();
    const nlohmann::json shape = {{"B", spec.B}, {"T", spec.T}, {"H", spec.H}, {"HV", spec.HV}, {"K", spec.K}, {"V", spec.V}};
    auto add = [&](const char* suite, const char* impl, double s, double anchor_s, double err, int nthreads) {
      rows.push_back({{"suite", suite}, {"impl", impl}, {"anchor", "gdn2.recurrent_ref_fp64"}, {"shape", shape},
                      {"mode", a.mode}, {"dtype", "fp32"}, {"state_dtype", "fp32"}, {"ms", s * 1e3},
                      {"anchor_ms", anchor_s * 1e3}, {"ratio_vs_anchor", anchor_s / s},
                      {"rel_rms_vs_reference", err}, {"threads", nthreads}, {"device", cpu_model()},
                      {"commit", GDN2_GIT_COMMIT}, {"source_hash", GDN2_SOURCE_HASH},
                      {"command", command}});
    };
    add("cpu.chunk_fwd", "gdn2.chunk_fwd_fp32", t_chunk, t_ref, err_chunk, threads);
    add("cpu.chunk_fwd", "gdn2.chunk_fwd_fp32", t_chunk1, t_ref, err_chunk, 1);
    add("cpu.recurrent_fwd", "gdn2.recurrent_fp32", t_rec, t_ref, err_rec, threads);
    if (a.backward) {
      add("cpu.chunk_bwd", "gdn2.chunk_bwd_fp32", t_bwd, t_ref_bwd, err_bwd, threads);
      rows.back()["anchor"] = "gdn2.recurrent_ref_bwd_fp64";
    }
    atomic_write_file(a.json, rows.dump(2) + "\n");
    std::printf("wrote %s\n", a.json.c_str());
  }
  return 0;
}

}  // namespace

void add_ops_bench_command(CLI::App& ops, Context& ctx) {
  auto a = std::make_shared<BenchArgs>();
  auto command = std::make_shared<std::string>();
  CLI::App* cmd = ops.add_subcommand("bench", "time the CPU GDN-2 ops against the fp64 oracle (correctness-gated)");
  cmd->add_option("-B", a->B, "batch")->check(CLI::Range(1, 4096));
  cmd->add_option("-T", a->T, "tokens per sequence")->check(CLI::Range(1, 1 << 20));
  cmd->add_option("-H", a->H, "q/k heads")->check(CLI::Range(1, 256));
  cmd->add_option("--HV", a->HV, "value heads (0: H)")->check(CLI::Range(0, 1024));
  cmd->add_option("-K", a->K, "key dim")->check(CLI::Range(1, 1024));
  cmd->add_option("-V", a->V, "value dim")->check(CLI::Range(1, 1024));
  cmd->add_option("--mode", a->mode, "gate mode")->check(CLI::IsMember({"gdn2", "kda", "gdn", "ssd"}));
  cmd->add_option("--reps", a->reps, "timed repetitions (median)")->check(CLI::Range(1, 1000));
  cmd->add_option("--threads", a->threads, "CPU threads (0: all)")->check(CLI::Range(0, 4096));
  cmd->add_flag("!--no-backward", a->backward, "skip the backward timings");
  cmd->add_option("--json", a->json, "also write the rows (bench/results format) to this file");
  cmd->callback([a, command, &ctx] {
    GDN2_CHECK(a->HV == 0 || a->HV % a->H == 0, ValueError, "--HV must be a multiple of -H");
    std::string c = "gdn2 ops bench -B " + std::to_string(a->B) + " -T " + std::to_string(a->T) + " -H " +
                    std::to_string(a->H) + " -K " + std::to_string(a->K) + " -V " + std::to_string(a->V) +
                    " --mode " + a->mode;
    ctx.exit_code = run_bench(*a, c);
  });
}

}  // namespace gdn2::cli
