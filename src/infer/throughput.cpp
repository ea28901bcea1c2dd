// Inference throughput on random tokens: prefill, then batched greedy decode (the end-to-end benchmark's serving half).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <random>

#include "gdn2/backend.h"
#include "gdn2/batch_decoder.h"
#include "gdn2/generate.h"

namespace gdn2 {

namespace {

using Clock = std::chrono::steady_clock;

double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Greedy next tokens [B, 1] of logits [B, 1, V] read back to the host; clears `finite` on a NaN or infinity.
Tensor next_tokens(const Tensor& logits, bool& finite) {
  const Tensor l = logits.to(DType::f32).cpu();
  const int64_t B = l.size(0), V = l.size(-1);
  std::vector<int32_t> ids(static_cast<size_t>(B));
  for (int64_t b = 0; b < B; ++b) {
    const float* row = l.data<float>() + b * V;
    for (int64_t v = 0; v < V; ++v) finite = finite && std::isfinite(row[v]);
    ids[static_cast<size_t>(b)] = static_cast<int32_t>(std::max_element(row, row + V) - row);
  }
  return Tensor::from_vector<int32_t>({B, 1}, ids);
}

}  // namespace

InferThroughput infer_throughput(LanguageModel& model, int64_t batch, int64_t prompt, int64_t decode_steps,
                                 int64_t prefill_chunk, uint64_t seed, bool cuda_graphs, DType state_dtype) {
  GDN2_CHECK(batch > 0 && prompt > 0 && decode_steps >= 2 && prefill_chunk >= 0, ValueError,
             "infer_throughput: batch ", batch, ", prompt ", prompt, ", decode_steps ", decode_steps,
             " (at least 2), prefill_chunk ", prefill_chunk);
  std::mt19937_64 rng(seed);
  std::vector<int32_t> ids(static_cast<size_t>(batch * prompt));
  for (int32_t& x : ids) x = static_cast<int32_t>(rng() % static_cast<uint64_t>(model.config().vocab_size));
  InferThroughput r;
  cuda_memory_reset_peak();
  const int64_t piece = prefill_chunk > 0 ? prefill_chunk : prompt;
  auto prefill = [&] {  // seconds, to the first picks on the host
    InferenceState state = model.new_state(batch);
    const auto t0 = Clock::now();
    Tensor logits;
    for (int64_t s = 0; s < prompt; s += piece) {
      const int64_t n = std::min(piece, prompt - s);
      std::vector<int32_t> part;
      for (int64_t b = 0; b < batch; ++b)
        part.insert(part.end(), ids.begin() + b * prompt + s, ids.begin() + b * prompt + s + n);
      logits = model.forward_logits(Tensor::from_vector<int32_t>({batch, n}, part), &state, true);
    }
    next_tokens(logits, r.finite);
    return since(t0);
  };
  r.prefill_cold_s = prefill();
  r.prefill_s = prefill();
  r.prefill_tokens_per_s = static_cast<double>(batch * prompt) / r.prefill_s;
  // Decode: the same prompts in a batch decoder (continuous batching slots, CUDA graphs on the GPU), greedy; each
  // step reads its picks back to the host, as a server would.
  BatchDecoderOptions bo;
  bo.capacity = batch;
  bo.max_len = prompt + decode_steps + 1;
  bo.prefill_chunk = prefill_chunk;
  bo.cuda_graphs = cuda_graphs;
  bo.state_dtype = state_dtype;
  BatchDecoder dec(model, bo);
  std::vector<std::vector<int32_t>> prompts;
  for (int64_t b = 0; b < batch; ++b) prompts.emplace_back(ids.begin() + b * prompt, ids.begin() + (b + 1) * prompt);
  SamplingOptions greedy;
  greedy.temperature = 0;
  greedy.max_new_tokens = decode_steps + 1;
  dec.join(prompts, greedy);
  dec.step();  // the prefill's tokens come out; the first decode runs (warmup)
  const auto t0 = Clock::now();
  for (int64_t i = 1; i < decode_steps; ++i) dec.step();
  const double s = since(t0) / static_cast<double>(decode_steps - 1);
  r.decode_ms_per_step = s * 1e3;
  r.decode_tokens_per_s = static_cast<double>(batch) / s;
  r.state_bytes = dec.state_bytes();
  const ModelConfig& c = model.config();
  const int64_t table = c.tie_word_embeddings ? 0 : c.vocab_size * c.hidden_size;  // rows gathered, not read whole
  r.step_bytes = (model.num_params() - table) * static_cast<int64_t>(dtype_size(model.compute_dtype())) +
                 dec.slots().decode_bytes(prompt + decode_steps / 2);
  r.cuda_graphs = dec.uses_cuda_graphs();
  r.peak_bytes = cuda_memory_held_peak();
  return r;
}

}  // namespace gdn2
