// `gdn2 ops attn-bench`: timings of the softmax-attention ops, CPU (fp32 forward, backward and a decode step, gated on
// the same problems in fp64) or CUDA (bf16 forward and forward + backward, gated on the CPU's fp32).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <string>
#include <vector>

#include "gdn2/backend.h"
#include "gdn2/ops/attention.h"
#include "tools/cli.h"

namespace gdn2::cli {

namespace {

struct AttnBenchArgs {
  int64_t B = 8, T = 256, H = 4, Hkv = 0, D = 64, window = 0;
  int reps = 9;
  int threads = 0;
  double budget = 1e-5;
  std::string backend = "cpu", json;
};

struct Timing {
  double median, best;  // wall-clock seconds
  double cpu;           // median CPU seconds of the process (all threads; steadier than wall time on a busy host)
};

double process_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

template <class F>
Timing time_reps(int reps, F&& f) {
  std::vector<double> t, c;
  for (int i = 0; i < reps; ++i) {
    const double c0 = process_cpu_seconds();
    const auto t0 = std::chrono::steady_clock::now();
    f();
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    c.push_back(process_cpu_seconds() - c0);
  }
  std::sort(t.begin(), t.end());
  std::sort(c.begin(), c.end());
  return {t[t.size() / 2], t.front(), c[c.size() / 2]};
}

// Uniform values in [-1, 1) from a fixed seed (a small LCG: the bench needs no statistics, only repeatability).
Tensor uniform(const Shape& s, uint64_t seed) {
  std::vector<double> v(static_cast<size_t>(shape_numel(s)));
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (double& e : v) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    e = static_cast<double>(x >> 11) / static_cast<double>(1ull << 52) - 1.0;
  }
  return Tensor::from_vector(s, v);
}

// The GPU kernels in BF16 (the model's attention): forward and forward + backward timed by graph replays, gated on
// the CPU's F32 result on the same (rounded) inputs.
int run_attn_bench_cuda(const AttnBenchArgs& a) {
  backend_require(Backend::cuda);
  const int64_t Hkv = a.Hkv ? a.Hkv : a.H;
  const DType bf = DType::bf16;
  const Tensor q = uniform({a.B, a.T, a.H, a.D}, 1).to(bf), k = uniform({a.B, a.T, Hkv, a.D}, 2).to(bf),
               v = uniform({a.B, a.T, Hkv, a.D}, 3).to(bf), d_o = uniform({a.B, a.T, a.H, a.D}, 4).to(bf);
  const Tensor qg = q.to(Device::cuda), kg = k.to(Device::cuda), vg = v.to(Device::cuda), dog = d_o.to(Device::cuda);
  AttentionOptions opt{0.0, a.window};
  opt.repeated_shape = true;  // timed over repeated calls of one shape, as training runs it (cuDNN where it is on)
  std::printf("gdn2 ops attn-bench: B%ld T%ld Hq%ld Hkv%ld D%ld window %ld, causal, bf16\n%s\n\n", a.B, a.T, a.H, Hkv,
              a.D, a.window, backend_describe(Backend::cuda).c_str());
  const AttentionResult r = attention_forward(qg, kg, vg, opt);
  const AttentionGrads g = attention_backward(dog, qg, kg, vg, r.o, r.lse, opt);
  const AttentionResult ref = attention_forward(q.to(DType::f32), k.to(DType::f32), v.to(DType::f32), opt);
  const AttentionGrads gref = attention_backward(d_o.to(DType::f32), q.to(DType::f32), k.to(DType::f32),
                                                 v.to(DType::f32), r.o.cpu().to(DType::f32), r.lse.cpu(), opt);
  const double err_fwd = rel_rms_error(r.o, ref.o);
  const double err_bwd =
      std::max({rel_rms_error(g.dq, gref.dq), rel_rms_error(g.dk, gref.dk), rel_rms_error(g.dv, gref.dv)});
  const double fwd = backend_time_ms(Backend::cuda, [&](void*) { attention_forward(qg, kg, vg, opt); }, 3, a.reps);
  const double both = backend_time_ms(
      Backend::cuda,
      [&](void*) {
        const AttentionResult x = attention_forward(qg, kg, vg, opt);
        attention_backward(dog, qg, kg, vg, x.o, x.lse, opt);
      },
      3, a.reps);
  double pairs = 0;
  for (int64_t p = 0; p < a.T; ++p) pairs += static_cast<double>(a.window > 0 ? std::min(p + 1, a.window) : p + 1);
  const double unit = 2.0 * pairs * static_cast<double>(a.B * a.H * a.D);
  const double budget = 8e-3, gbudget = 1.6e-2;
  const bool ok = err_fwd <= budget && err_bwd <= gbudget;
  std::printf("  forward          %8.3f ms  %6.1f TFLOP/s  err vs CPU fp32 %.1e %s\n", fwd, 2 * unit / fwd * 1e-9,
              err_fwd, err_fwd <= budget ? "ok" : "FAIL");
  std::printf("  forward+backward %8.3f ms  %6.1f TFLOP/s  err vs CPU fp32 %.1e %s\n", both, 7 * unit / both * 1e-9,
              err_bwd, err_bwd <= gbudget ? "ok" : "FAIL");
  if (!a.json.empty() && ok) {
    std::FILE* f = std::fopen(a.json.c_str(), "w");
    if (f != nullptr) {
      std::fprintf(f, "{\"impl\": \"gdn2\", \"B\": %ld, \"T\": %ld, \"Hq\": %ld, \"Hkv\": %ld, \"D\": %ld, "
                      "\"fwd_ms\": %.4f, \"fwd_bwd_ms\": %.4f, \"err_fwd\": %.3e, \"err_bwd\": %.3e}\n",
                   a.B, a.T, a.H, Hkv, a.D, fwd, both, err_fwd, err_bwd);
      std::fclose(f);
    }
  }
  return ok ? 0 : 1;
}

int run_attn_bench(const AttnBenchArgs& a) {
  if (a.backend == "cuda") return run_attn_bench_cuda(a);
  set_cpu_threads(a.threads);
  const int64_t Hkv = a.Hkv ? a.Hkv : a.H;
  const Tensor q = uniform({a.B, a.T, a.H, a.D}, 1), k = uniform({a.B, a.T, Hkv, a.D}, 2),
               v = uniform({a.B, a.T, Hkv, a.D}, 3), d_o = uniform({a.B, a.T, a.H, a.D}, 4);
  const Tensor q32 = q.to(DType::f32), k32 = k.to(DType::f32), v32 = v.to(DType::f32), d_o32 = d_o.to(DType::f32);
  const AttentionOptions opt{0.0, a.window};
  std::printf("gdn2 ops attn-bench: B%ld T%ld Hq%ld Hkv%ld D%ld window %ld, causal\n", a.B, a.T, a.H, Hkv, a.D,
              a.window);
  std::printf("%s\n\n", backend_describe(Backend::cpu).c_str());

  const AttentionResult ref = attention_forward(q, k, v, opt);
  const AttentionGrads gref = attention_backward(d_o, q, k, v, ref.o, ref.lse, opt);
  AttentionResult r = attention_forward(q32, k32, v32, opt);  // warm-up
  const Timing t_fwd = time_reps(a.reps, [&] { r = attention_forward(q32, k32, v32, opt); });
  AttentionGrads g = attention_backward(d_o32, q32, k32, v32, r.o, r.lse, opt);
  const Timing t_bwd = time_reps(a.reps, [&] { g = attention_backward(d_o32, q32, k32, v32, r.o, r.lse, opt); });
  // Decode: one new query per sequence against a KV cache holding all T tokens.
  const Tensor q1 = uniform({a.B, 1, a.H, a.D}, 5);
  const AttentionResult ref1 = attention_forward(q1, k, v, opt);
  const Tensor q1_32 = q1.to(DType::f32);
  AttentionResult r1 = attention_forward(q1_32, k32, v32, opt);
  const Timing t_dec = time_reps(a.reps, [&] { r1 = attention_forward(q1_32, k32, v32, opt); });
  const double err_dec = std::max(rel_rms_error(r1.o, ref1.o), rel_rms_error(r1.lse, ref1.lse));
  const double err_fwd = std::max(rel_rms_error(r.o, ref.o), rel_rms_error(r.lse, ref.lse));
  const double err_bwd =
      std::max({rel_rms_error(g.dq, gref.dq), rel_rms_error(g.dk, gref.dk), rel_rms_error(g.dv, gref.dv)});

  // Useful multiply-adds: Σ over rows of the keys each sees, times D, for each of the products.
  double pairs = 0;
  for (int64_t p = 0; p < a.T; ++p) pairs += static_cast<double>(a.window > 0 ? std::min(p + 1, a.window) : p + 1);
  const double unit = 2.0 * pairs * static_cast<double>(a.B * a.H * a.D);  // flops of one rows × keys × D product
  auto row = [&](const char* what, Timing t, double err, double products) {
    std::printf("  %-14s median %8.3f ms (best %8.3f, cpu %8.3f)  %6.2f GFLOP/s useful (%g products)  "
                "err vs fp64 %.1e %s\n",
                what, t.median * 1e3, t.best * 1e3, t.cpu * 1e3, products * unit / t.median * 1e-9, products, err,
                err <= a.budget ? "ok" : "FAIL");
  };
  row("forward fp32", t_fwd, err_fwd, 2);
  row("backward fp32", t_bwd, err_bwd, 5);
  std::printf("  %-14s median %8.3f ms (best %8.3f, cpu %8.3f)  one query per sequence against %ld cached tokens  "
              "err vs fp64 %.1e %s\n",
              "decode fp32", t_dec.median * 1e3, t_dec.best * 1e3, t_dec.cpu * 1e3, a.T, err_dec,
              err_dec <= a.budget ? "ok" : "FAIL");
  const bool ok = err_fwd <= a.budget && err_bwd <= a.budget && err_dec <= a.budget;
  if (!ok) std::printf("\nFAILED: outside the %.1e budget of the fp64 run\n", a.budget);
  return ok ? 0 : 1;
}

}  // namespace

void add_ops_attn_bench_command(CLI::App& ops, Context& ctx) {
  auto a = std::make_shared<AttnBenchArgs>();
  CLI::App* cmd = ops.add_subcommand("attn-bench", "time the CPU softmax-attention ops (fp32, checked against fp64)");
  cmd->add_option("-B", a->B, "batch")->check(CLI::Range(1, 4096));
  cmd->add_option("-T", a->T, "tokens per sequence")->check(CLI::Range(1, 1 << 20));
  cmd->add_option("-H", a->H, "query heads")->check(CLI::Range(1, 256));
  cmd->add_option("--Hkv", a->Hkv, "kv heads (0: H)")->check(CLI::Range(0, 256));
  cmd->add_option("-D", a->D, "head dim")->check(CLI::Range(1, 1024));
  cmd->add_option("--window", a->window, "sliding window (0: full causal)")->check(CLI::Range(0, 1 << 20));
  cmd->add_option("--reps", a->reps, "timed repetitions (median)")->check(CLI::Range(1, 1000));
  cmd->add_option("--threads", a->threads, "CPU threads (0: all)")->check(CLI::Range(0, 4096));
  cmd->add_option("--backend", a->backend, "cpu (fp32 against fp64) or cuda (bf16 against the CPU's fp32)")
      ->check(CLI::IsMember({"cpu", "cuda"}));
  cmd->add_option("--json", a->json, "cuda: write the timings here (when the gate passes)");
  cmd->callback([a, &ctx] {
    GDN2_CHECK(a->Hkv == 0 || a->H % a->Hkv == 0, ValueError, "-H must be a multiple of --Hkv");
    ctx.exit_code = run_attn_bench(*a);
  });
}

}  // namespace gdn2::cli
