// `gdn2 ops cuda-bench`: GPU timings of the GDN-2 chunk forward and decode at the shapes, each gated on
// correctness against the CPU backend, as JSON rows for bench/compare.py (which adds the fla anchor's ratios).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

#include "gdn2/atomic_file.h"
#include "gdn2/backend.h"
#include "gdn2/ops/gdn2.h"
#include "gdn2/ops/gdn2_random.h"
#include "tools/cli.h"
#include "gdn2_stamp.h"  // GDN2_GIT_COMMIT, GDN2_SOURCE_HASH (generated at build time)

namespace gdn2::cli {

namespace {

struct CudaBenchArgs {
  std::string json;
  int reps = 20;
  double gate = 8e-3;  // bf16 outputs against the fp32 CPU result on the same inputs
  bool quick = false;
  bool decode_only = false;
};

int64_t input_bytes(const Gdn2Inputs& in) {
  int64_t n = 0;
  for (const Tensor* t : {&in.q, &in.k, &in.v, &in.g_log, &in.b, &in.w})
    if (t->defined()) n += static_cast<int64_t>(t->nbytes());
  return n;
}

int run_cuda_bench(const CudaBenchArgs& a, const std::string& command) {
  backend_require(Backend::cuda);
  const double copy = cuda_copy_gbps();
  std::printf("%s\ncopy bandwidth %.0f GB/s (read + write)\n\n", backend_describe(Backend::cuda).c_str(), copy);
  nlohmann::json rows = nlohmann::json::array();
  const int64_t H = 16, K = 128, V = 128;
  struct Prefill {
    std::string name;
    int64_t B, T;
    std::vector<int64_t> seqlens;
  };
  std::vector<Prefill> shapes{{"B4xT4096", 4, 4096, {}}, {"B1xT16384", 1, 16384, {}}, {"B16xT1024", 16, 1024, {}},
                              {"varlen8x16384", 1, 16384, {5120, 3072, 2048, 2048, 1536, 1024, 1000, 536}}};
  if (a.quick) shapes.resize(1);
  if (a.decode_only) shapes.clear();
  auto prefill_spec = [&](const Prefill& s, uint64_t seed) {
    Gdn2RandomSpec spec;
    spec.B = s.B, spec.T = s.T, spec.H = H, spec.HV = H, spec.K = K, spec.V = V, spec.seqlens = s.seqlens;
    spec.h0 = false, spec.dtype = DType::bf16, spec.seed = seed;
    return spec;
  };
  std::printf("%-16s %10s %10s %9s %10s\n", "chunk forward", "ms", "Mtok/s", "GB/s", "rel err");
  for (const Prefill& s : shapes) {
    const Gdn2RandomSpec spec = prefill_spec(s, 42);
    const Gdn2Inputs in = gdn2_random_inputs(spec);
    const Gdn2Options opt = gdn2_random_options(spec);
    const Gdn2Inputs d = gdn2_inputs_to(in, Device::cuda);
    Gdn2Plan plan(d, opt, Gdn2Kernel::chunk);
    const double ms = backend_time_ms(Backend::cuda, [&](void* st) { plan.run(st); }, 3, a.reps, 1);
    plan.run();
    plan.sync();
    const Gdn2Outputs cpu = gdn2_chunk_fwd(in, opt);
    const double err = rel_rms_error(plan.outputs().o, cpu.o);
    const double tokens = static_cast<double>(spec.tokens());
    const double bytes = static_cast<double>(input_bytes(in) + plan.outputs().o.nbytes() + plan.outputs().ht.nbytes());
    std::printf("%-16s %10.3f %10.1f %9.0f %10.2e %s\n", s.name.c_str(), ms, tokens / ms / 1e3, bytes / ms / 1e6, err,
                err <= a.gate ? "" : "GATE FAILED");
    if (err > a.gate) continue;  // a row whose gate failed is not written
    rows.push_back({{"suite", "ops.chunk_fwd"}, {"impl", "gdn2"}, {"case", s.name},
                    {"shape", {{"B", s.B}, {"T", s.T}, {"H", H}, {"HV", H}, {"K", K}, {"V", V}}},
                    {"seqlens", s.seqlens}, {"dtype", "bf16"}, {"state_dtype", "fp32"}, {"ms", ms},
                    {"mtok_s", tokens / ms / 1e3}, {"gbps", bytes / ms / 1e6}, {"copy_gbps", copy},
                    {"rel_rms_vs_reference", err}, {"reference", "gdn2 CPU chunk fp32, same inputs"},
                    {"device", backend_describe(Backend::cuda)}, {"commit", GDN2_GIT_COMMIT},
                    {"source_hash", GDN2_SOURCE_HASH}, {"command", command}});
  }
  // Forward + backward (training): the planned forward, then the backward op call, host wall time (the backward
  // allocates its scratch per call). Two ways to give the backward the forward's chunks (include/gdn2/ops/gdn2.h):
  // store (the forward's chunk states and workspace, the training default) and recompute (nothing kept). Gate: every
  // gradient against the CPU fp32 backward on the same inputs.
  std::vector<Prefill> train_shapes(shapes.begin(), shapes.begin() + std::min<size_t>(shapes.size(), 3));
  std::printf("\n%-26s %10s %10s %9s %10s\n", "chunk fwd+bwd", "ms", "Mtok/s", "extra MB", "rel err");
  for (const Prefill& s : train_shapes) {
    const Gdn2RandomSpec spec = prefill_spec(s, 43);
    const Gdn2Inputs in = gdn2_random_inputs(spec);
    const auto [d_o_cpu, dht_unused] = gdn2_random_cotangents(spec, 44);
    const Gdn2Inputs d = gdn2_inputs_to(in, Device::cuda);
    const Tensor d_o = d_o_cpu.to(DType::bf16).to(Device::cuda);
    const Gdn2Grads ref = gdn2_chunk_bwd(in, gdn2_random_options(spec), d_o.cpu(), Tensor());
    for (const bool store : {true, false}) {
      Gdn2Options opt = gdn2_random_options(spec);
      opt.chunk_states = store;
      const std::string name = s.name + (store ? "" : "/recompute");
      Gdn2Grads g;
      auto fwd_bwd = [&](Gdn2Plan& plan) {
        plan.run();
        plan.sync();
        return gdn2_chunk_bwd(d, opt, d_o, Tensor(), plan.outputs().h, plan.outputs().work);
      };
      {
        Gdn2Plan plan(d, opt, Gdn2Kernel::chunk);
        g = fwd_bwd(plan);
      }
      double err = 0.0;
      for (auto [x, y] : {std::pair{&g.dq, &ref.dq}, {&g.dk, &ref.dk}, {&g.dv, &ref.dv}, {&g.dg, &ref.dg},
                          {&g.db, &ref.db}, {&g.dw, &ref.dw}})
        err = std::max(err, rel_rms_error(*x, *y));
      g = Gdn2Grads();
      std::vector<double> times;
      {
        Gdn2Plan plan(d, opt, Gdn2Kernel::chunk);
        for (int r = 0; r < std::max(3, a.reps / 4) + 1; ++r) {
          const auto t0 = std::chrono::steady_clock::now();
          g = fwd_bwd(plan);
          if (r > 0)
            times.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
        }
      }
      g = Gdn2Grads();
      std::sort(times.begin(), times.end());
      const double ms = times[times.size() / 2];
      // Device memory beyond the inputs and d_o at the peak of one forward + backward (forward outputs and workspace,
      // the backward's scratch and the gradients), as fla's row measures it with torch.cuda.max_memory_allocated.
      const double tokens = static_cast<double>(spec.tokens());
      double extra_mb = 0.0;
      {
        const int64_t base = cuda_memory_held();
        cuda_memory_reset_peak();
        Gdn2Plan fresh(d, opt, Gdn2Kernel::chunk);
        const Gdn2Grads once = fwd_bwd(fresh);
        extra_mb = static_cast<double>(cuda_memory_held_peak() - base) / 1e6;
      }
      const double budget = a.gate;  // chunk states from the tensor-core forward: bf16 products
      std::printf("%-26s %10.3f %10.1f %9.0f %10.2e %s\n", name.c_str(), ms, tokens / ms / 1e3, extra_mb, err,
                  err <= budget ? "" : "GATE FAILED");
      if (err > budget) continue;
      const double bytes = 2.0 * static_cast<double>(input_bytes(in)) + static_cast<double>(d_o.nbytes());
      rows.push_back({{"suite", "ops.chunk_fwd_bwd"}, {"impl", "gdn2"}, {"case", name}, {"anchor_case", s.name},
                      {"saved", store ? "store: the forward's chunk states and workspace" : "recompute"},
                      {"shape", {{"B", s.B}, {"T", s.T}, {"H", H}, {"HV", H}, {"K", K}, {"V", V}}}, {"dtype", "bf16"},
                      {"state_dtype", "fp32"}, {"ms", ms}, {"mtok_s", tokens / ms / 1e3}, {"gbps", bytes / ms / 1e6},
                      {"copy_gbps", copy}, {"extra_mb", extra_mb},
                      {"extra_mb_measures", "peak device memory held by tensors during one forward + backward, beyond the inputs and d_o"},
                      {"rel_rms_vs_reference", err},
                      {"reference", "gdn2 CPU chunk backward fp32, same inputs (worst gradient)"},
                      {"timing", "host wall time of planned forward + backward op call, median"},
                      {"device", backend_describe(Backend::cuda)}, {"commit", GDN2_GIT_COMMIT},
                      {"source_hash", GDN2_SOURCE_HASH}, {"command", command}});
    }
  }

  std::printf("\n%-16s %10s %10s %9s %10s\n", "decode step", "us", "state", "GB/s", "rel err");
  for (int64_t B : {1, 8, 64, 256}) {
    for (DType sd : {DType::f32, DType::bf16}) {
      Gdn2RandomSpec spec;
      spec.B = B, spec.T = 1, spec.H = H, spec.HV = H, spec.K = K, spec.V = V, spec.dtype = DType::bf16, spec.seed = 7;
      const Gdn2Inputs in = gdn2_random_inputs(spec);
      const Gdn2Options opt = gdn2_random_options(spec);
      Gdn2Inputs d = gdn2_inputs_to(in, Device::cuda);
      d.h0 = Tensor();
      Tensor state = in.h0.to(sd).to(Device::cuda);
      const Tensor state0 = state.to(Device::cpu);
      Gdn2Plan plan(d, opt, Gdn2Kernel::recurrent, &state);
      // Correctness of one step from the initial state, then time steps back to back (the state evolves).
      plan.run();
      plan.sync();
      Gdn2Inputs cpu_in = in;
      cpu_in.h0 = state0.to(DType::f32);
      const Gdn2Outputs cpu = gdn2_recurrent_ref(cpu_in, opt);
      const double err = std::max(rel_rms_error(plan.outputs().o, cpu.o), rel_rms_error(state.to(DType::f32), cpu.ht));
      const double ms = backend_time_ms(Backend::cuda, [&](void* st) { plan.run(st); }, 3, a.reps, 20);
      const double state_bytes = 2.0 * static_cast<double>(state.nbytes());
      const double budget = sd == DType::f32 ? a.gate : 2e-2;
      std::printf("B%-15ld %10.2f %10s %9.0f %10.2e %s\n", static_cast<long>(B), ms * 1e3, sd == DType::f32 ? "fp32" : "bf16",
                  state_bytes / ms / 1e6, err, err <= budget ? "" : "GATE FAILED");
      if (err > budget) continue;
      rows.push_back({{"suite", "ops.decode"}, {"impl", "gdn2"}, {"case", "B" + std::to_string(B)},
                      {"shape", {{"B", B}, {"T", 1}, {"H", H}, {"HV", H}, {"K", K}, {"V", V}}}, {"dtype", "bf16"},
                      {"state_dtype", sd == DType::f32 ? "fp32" : "bf16"}, {"ms", ms}, {"us", ms * 1e3},
                      {"gbps", state_bytes / ms / 1e6}, {"copy_gbps", copy}, {"rel_rms_vs_reference", err},
                      {"reference", "gdn2 fp64 oracle, same inputs and initial state"},
                      {"device", backend_describe(Backend::cuda)}, {"commit", GDN2_GIT_COMMIT},
                      {"source_hash", GDN2_SOURCE_HASH}, {"command", command}});
    }
  }
  if (!a.json.empty()) {
    atomic_write_file(a.json, rows.dump(1) + "\n");
    std::printf("\nwrote %s\n", a.json.c_str());
  }
  return 0;
}

}  // namespace

void add_ops_cuda_bench_command(CLI::App& ops, Context& ctx) {
  auto a = std::make_shared<CudaBenchArgs>();
  CLI::App* cmd = ops.add_subcommand("cuda-bench", "time the CUDA GDN-2 kernels at H16 K=V=128 bf16 (correctness-gated)");
  cmd->add_option("--json", a->json, "write the rows (bench/results format) to this file");
  cmd->add_option("--reps", a->reps, "timed repetitions (median)")->check(CLI::Range(1, 10000));
  cmd->add_flag("--quick", a->quick, "only the first prefill shape");
  cmd->add_flag("--decode-only", a->decode_only, "only the decode steps");
  cmd->callback([a, &ctx] { ctx.exit_code = run_cuda_bench(*a, "gdn2 ops cuda-bench"); });
}

}  // namespace gdn2::cli
