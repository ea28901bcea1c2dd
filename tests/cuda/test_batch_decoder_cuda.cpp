// Continuous-batching decode on the GPU: decode attention on KV caches (both kernels: tensor cores for BF16 and F16 at
// head dim 64 and 128, CUDA cores otherwise; split over long caches, windows, GQA groups above one block, odd head dims,
// idle rows; with and without an output gate) and the cache write against the CPU; greedy picks; slot decode of the
// model against the CPU model; the batch decoder with CUDA graphs and without, each token checked against the CPU
// model's full forward.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <string>

#include "cuda/model_cuda_util.h"
#include "cuda/op_cuda_util.h"
#include "cuda/require_gpu.h"
#include "gdn2/batch_decoder.h"
#include "gdn2/model/lm.h"
#include "gdn2/ops/attention.h"
#include "gdn2/ops/dense.h"

namespace gdn2 {
namespace {

using test::copy_params;
using test::gpu_config;
using test::held;

double budget(DType dt) { return test::gpu_budget(dt); }

struct DecodeCase {
  int64_t S, L, Hq, Hkv, D, window;
  std::vector<int32_t> lengths;
};

TEST(AttentionDecodeCuda, MatchesCpu) {
  REQUIRE_GPU();
  const DecodeCase cases[] = {{3, 1000, 4, 1, 128, 0, {1000, 1, 517}},   // one sequence splits its keys
                              {2, 300, 16, 1, 64, 0, {300, 129}},        // a group of 16: two blocks per kv head
                              {4, 90, 6, 2, 40, 17, {90, 3, 17, 18}},    // odd head dim, window
                              {1, 4000, 2, 2, 256, 0, {3999}},           // D = 256, many splits
                              {5, 64, 8, 2, 128, 0, {64, 2, 33}},        // N < S
                              {3, 200, 8, 2, 128, 50, {200, 7, 120}},    // window on the tensor-core kernel
                              {2, 130, 3, 3, 64, 0, {130, 65}}};         // one query head a group
  uint64_t seed = 1;
  for (const DecodeCase& c : cases)
    for (DType dt : {DType::f32, DType::bf16, DType::f16}) {
      const auto N = static_cast<int64_t>(c.lengths.size());
      const Tensor kc = held({c.S, c.L, c.Hkv, c.D}, ++seed, dt), vc = held({c.S, c.L, c.Hkv, c.D}, ++seed, dt);
      const Tensor q = held({N, c.Hq, c.D}, ++seed, dt);
      AttentionOptions o;
      o.window = c.window;
      const Tensor len = Tensor::from_vector<int32_t>({N}, c.lengths);
      const Tensor gate = held({N, c.Hq, c.D}, ++seed, dt);
      for (bool gated : {false, true}) {  // the output gate multiplied in as the output is written
        const Tensor got = attention_decode(q.to(dt).to(Device::cuda), kc.to(dt).to(Device::cuda),
                                            vc.to(dt).to(Device::cuda), len.to(Device::cuda), o,
                                            gated ? gate.to(dt).to(Device::cuda) : Tensor());
        const Tensor want = attention_decode(q, kc, vc, len, o, gated ? gate : Tensor());
        EXPECT_EQ(got.dtype(), dt);
        EXPECT_LE(rel_rms_error(got, want), budget(dt)) << "L " << c.L << " Hq " << c.Hq << " D " << c.D << " "
                                                        << dtype_name(dt) << (gated ? " gated" : "");
      }
    }
  // An idle row (length 0) comes out zero.
  const Tensor kc = Tensor::full({2, 8, 1, 64}, DType::bf16, 1.0).to(Device::cuda);
  const Tensor ones = Tensor::full({2, 2, 64}, DType::bf16, 1.0).to(Device::cuda);
  const Tensor o = attention_decode(ones, kc, kc,
                                    Tensor::from_vector<int32_t>({2}, {3, 0}).to(Device::cuda));
  const std::vector<double> v = o.to_f64_vector();
  EXPECT_EQ(v[0], 1.0);
  EXPECT_EQ(v[2 * 64], 0.0);
  EXPECT_THROW(attention_decode(ones, kc, kc,
                                Tensor::from_vector<int32_t>({2}, {3, 0})),
               ShapeError);  // lengths on the host
}

TEST(AttentionDecodeCuda, CacheWriteSkipsIdleRows) {
  REQUIRE_GPU();
  Tensor cache = Tensor::zeros({3, 6, 2, 5}, DType::bf16, Device::cuda);
  const Tensor x = held({3, 2, 5}, 9, DType::bf16);
  kv_cache_write(cache, x.to(DType::bf16).to(Device::cuda), Tensor::from_vector<int32_t>({3}, {5, -1, 0}).to(Device::cuda));
  Tensor ref = Tensor::zeros({3, 6, 2, 5}, DType::f32);
  const Tensor x0 = x.slice0(0, 1).reshape({1, 2, 5}), x2 = x.slice0(2, 3).reshape({1, 2, 5});
  Tensor r0 = ref.slice0(0, 1), r2 = ref.slice0(2, 3);
  kv_cache_write(r0, x0, Tensor::from_vector<int32_t>({1}, {5}));
  kv_cache_write(r2, x2, Tensor::from_vector<int32_t>({1}, {0}));
  EXPECT_EQ(cache.to(DType::f32).to_f64_vector(), ref.to_f64_vector());
}

TEST(ArgmaxRowsCuda, MatchesCpu) {
  REQUIRE_GPU();
  // 30001 columns: rows starting off a 16-byte boundary (elements before the first pack and after the last one by
  // one); 32000: whole packs only. One row's maximum twice (the first must win), in the head, the last column, a NaN.
  for (int64_t V : {30001, 32000})
    for (DType dt : {DType::f32, DType::bf16}) {
      Tensor x = held({5, V}, 11, dt);
      std::vector<double> v = x.to_f64_vector();
      v[3 * V + 7] = NAN;
      v[1 * V + V - 1] = 5;  // the last column
      v[4 * V + 2] = v[4 * V + 20000] = 6;
      v[2 * V + 1] = 7;
      x = Tensor::from_vector<double>({5, V}, v).to(dt);
      const std::vector<double> want = argmax_rows(x).to_f64_vector();
      EXPECT_EQ(argmax_rows(x.to(Device::cuda)).cpu().to_f64_vector(), want);
      EXPECT_EQ(want[1], V - 1);
      EXPECT_EQ(want[2], 1);
      EXPECT_EQ(want[3], -1);
      EXPECT_EQ(want[4], 2);
    }
}

std::vector<int32_t> tokens(int64_t n, int64_t V, uint64_t seed) {
  const Tensor t = test::random_ids(1, n, V, seed);
  return std::vector<int32_t>(t.data<int32_t>(), t.data<int32_t>() + n);
}

TEST(SlotDecodeCuda, MatchesCpu) {
  REQUIRE_GPU();
  const ModelConfig c = gpu_config();
  LanguageModel cpu(c, DType::f32);
  cpu.init_random(5);
  // (compute dtype, recurrent state dtype of the slots): the BF16 states only on the BF16 model, as served.
  for (auto [compute, state] : {std::pair{DType::f32, DType::f32}, {DType::bf16, DType::f32}, {DType::bf16, DType::bf16}}) {
    LanguageModel gpu(c, DType::f32, Device::cuda, compute);
    copy_params(cpu, gpu);
    const std::vector<int64_t> lens{70, 3, 41};
    InferenceState sc = cpu.new_slots(4, 96), sg = gpu.new_slots(4, 96, state);
    std::vector<int32_t> ids, pos, len;
    for (size_t i = 0; i < lens.size(); ++i) {
      const Tensor p = Tensor::from_vector<int32_t>({1, lens[i]}, tokens(lens[i], c.vocab_size, 20 + i));
      InferenceState a = cpu.new_state(1), b = gpu.new_state(1);
      cpu.forward_logits(p, &a, true);
      gpu.forward_logits(p, &b, true);
      cpu.load_slot(sc, static_cast<int64_t>(i), a);
      gpu.load_slot(sg, static_cast<int64_t>(i), b);
      ids.push_back(static_cast<int32_t>(i * 17 + 2));
      pos.push_back(static_cast<int32_t>(lens[i]));
      len.push_back(static_cast<int32_t>(lens[i] + 1));
    }
    const auto N = static_cast<int64_t>(ids.size());
    const Tensor ti = Tensor::from_vector<int32_t>({N}, ids), tp = Tensor::from_vector<int32_t>({N}, pos),
                 tl = Tensor::from_vector<int32_t>({N}, len);
    const Tensor want = cpu.decode_slots(ti, tp, tl, sc);
    const Tensor got = gpu.decode_slots(ti.to(Device::cuda), tp.to(Device::cuda), tl.to(Device::cuda), sg);
    EXPECT_LE(rel_rms_error(got, want), compute == DType::f32 ? 1e-4 : 5e-2)
        << dtype_name(compute) << " states " << dtype_name(state);
  }
  EXPECT_THROW(cpu.new_slots(2, 8, DType::bf16), DTypeError);  // BF16 states are a GPU option
}

// Every emitted token is (within a margin) the CPU model's greedy choice after the sequence so far.
void check_greedy(LanguageModel& cpu, const std::vector<int32_t>& prompt, const std::vector<int32_t>& out,
                  const std::string& what) {
  std::vector<int32_t> seq = prompt;
  const int64_t V = cpu.config().vocab_size;
  for (int32_t t : out) {
    const std::vector<double> l = cpu.forward_logits(Tensor::from_vector<int32_t>({1, static_cast<int64_t>(seq.size())}, seq))
                                      .to_f64_vector();
    const auto last = l.end() - V;
    const double mx = *std::max_element(last, l.end()), mn = *std::min_element(last, l.end());
    EXPECT_GE(last[t], mx - 1e-3 * (mx - mn)) << what << " after " << seq.size() << " tokens";
    seq.push_back(t);
  }
}

TEST(BatchDecoderCuda, GraphsAndEagerPickTheCpuModelsTokens) {
  REQUIRE_GPU();
  const ModelConfig c = gpu_config();
  LanguageModel cpu(c, DType::f32);
  cpu.init_random(7);
  LanguageModel gpu(c, DType::f32, Device::cuda, DType::f32);
  copy_params(cpu, gpu);
  for (bool graphs : {true, false}) {
    BatchDecoderOptions o;
    o.capacity = 5;
    o.max_len = 128;
    o.prefill_chunk = 32;
    o.cuda_graphs = graphs;
    BatchDecoder dec(gpu, o);
    EXPECT_EQ(dec.uses_cuda_graphs(), graphs);
    SamplingOptions greedy;
    greedy.temperature = 0;
    greedy.max_new_tokens = 6;
    std::map<int64_t, std::vector<int32_t>> prompts, got;
    auto join = [&](std::vector<std::vector<int32_t>> ps, int64_t max_new) {
      SamplingOptions so = greedy;
      so.max_new_tokens = max_new;
      const std::vector<int64_t> ids = dec.join(ps, so);
      for (size_t i = 0; i < ids.size(); ++i) prompts[ids[i]] = ps[i];
    };
    join({tokens(50, c.vocab_size, 1), tokens(9, c.vocab_size, 2), tokens(50, c.vocab_size, 3)}, 6);
    int64_t sampled = -1;
    for (int step = 0; dec.active() > 0; ++step) {
      // Joins and a leave while greedy decodes run a step ahead (graphs): each must keep the picks in flight.
      if (step == 2) join({tokens(70, c.vocab_size, 4), tokens(1, c.vocab_size, 5)}, 4);  // 5 busy: the full bucket
      if (step == 3) dec.leave(0);
      if (step == 4) {  // a sampling sequence joins greedy ones: the steps after run unpipelined
        SamplingOptions so;
        so.temperature = 1;
        so.top_k = 5;
        so.max_new_tokens = 3;
        sampled = dec.join({tokens(20, c.vocab_size, 6)}, so)[0];
      }
      for (const DecodedToken& t : dec.step()) got[t.seq].push_back(t.token);
      ASSERT_LT(step, 40);
    }
    EXPECT_EQ(got[0].size(), 3u);  // left after step 2's token
    EXPECT_EQ(got[sampled].size(), 3u);
    for (int32_t t : got[sampled]) EXPECT_TRUE(t >= 0 && t < c.vocab_size);
    for (const auto& [id, p] : prompts) {
      if (id != 0) {
        EXPECT_EQ(got[id].size(), id < 3 ? 6u : 4u);
      }
      check_greedy(cpu, p, got[id], std::string(graphs ? "graphs" : "eager") + " sequence " + std::to_string(id));
    }
  }
}

}  // namespace
}  // namespace gdn2
