// Training throughput on random tokens (the end-to-end benchmark's training half).
#include <chrono>
#include <random>

#include "gdn2/backend.h"
#include "gdn2/train.h"
#include "model/params.h"
#include "train/adamw.h"

namespace gdn2 {

namespace {

Tensor random_tokens(int64_t B, int64_t T, int64_t V, std::mt19937_64& rng) {
  std::vector<int32_t> v(static_cast<size_t>(B * T));
  for (int32_t& x : v) x = static_cast<int32_t>(rng() % static_cast<uint64_t>(V));
  return Tensor::from_vector<int32_t>({B, T}, v);
}

// Returns once the device has finished all work so far (a read-back waits for the legacy stream).
void wait_idle(const LanguageModel& model) {
  if (model.device() != Device::cpu) model.params().all().front().value.item(0);
}

}  // namespace

ThroughputResult train_throughput(LanguageModel& model, int64_t batch, int64_t seq_len, int64_t warmup,
                                  int64_t steps, uint64_t seed, DataParallel* dp) {
  GDN2_CHECK(batch > 0 && seq_len > 0 && warmup >= 0 && steps > 0, ValueError, "train_throughput: batch ", batch,
             ", seq_len ", seq_len, ", warmup ", warmup, ", steps ", steps);
  AdamW opt(model.params(), {});
  std::mt19937_64 rng(seed + (dp ? static_cast<uint64_t>(dp->rank()) : 0));
  std::vector<Tensor*> grads;
  for (Param& p : model.params().all()) grads.push_back(&p.grad);
  ThroughputResult r;
  const int64_t V = model.config().vocab_size;
  auto step = [&] {
    const Tensor ids = random_tokens(batch, seq_len, V, rng), targets = random_tokens(batch, seq_len, V, rng);
    model.params().zero_grad();
    const double loss = model.forward_loss(ids, targets, true);
    model.backward();
    if (dp != nullptr) dp->average(grads);
    r.losses.push_back(dp ? dp->average(loss) : loss);
    opt.clip_grad_norm(1.0);
    opt.step(1e-4);
  };
  for (int64_t i = 0; i < warmup; ++i) step();
  wait_idle(model);
  cuda_memory_reset_peak();
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < steps; ++i) step();
  wait_idle(model);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.step_s = s / static_cast<double>(steps);
  r.tokens_per_s = static_cast<double>(batch * seq_len * (dp ? dp->world() : 1)) / r.step_s;
  r.peak_bytes = cuda_memory_held_peak();
  return r;
}

}  // namespace gdn2
