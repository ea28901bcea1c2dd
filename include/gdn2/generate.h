// Text generation (CPU or GPU model): chunked prefill, then constant-memory recurrent decode (KV cache for attention
// layers); greedy, temperature, top-k and top-p sampling with a seed; tokens streamed through a callback.
#pragma once

#include <cstdint>
#include <functional>
#include <random>
#include <vector>

#include "gdn2/model/lm.h"

namespace gdn2 {

struct SamplingOptions {
  int64_t max_new_tokens = 64;
  double temperature = 1.0;  // 0: greedy (argmax)
  int64_t top_k = 0;         // 0: off
  double top_p = 1.0;        // 1: off
  uint64_t seed = 0;
  std::vector<int32_t> stop_ids;  // generation ends after producing one of these
  int64_t prefill_chunk = 0;      // > 0: feed the prompt in pieces of this many tokens (chunked prefill)
};

// Picks the next token from logits [V] (F32 or F64). ValueError on bad options or non-finite logits.
int32_t sample_token(const float* logits, int64_t vocab, const SamplingOptions& o, std::mt19937_64& rng);

struct GenerateResult {
  std::vector<int32_t> tokens;  // the new tokens only
  double prefill_s = 0, decode_s = 0;
  int64_t state_bytes = 0;      // inference state at the end
};

// Generates a continuation of `prompt` (non-empty). on_token(id) is called as each token is produced; returning
// false stops generation.
GenerateResult generate(LanguageModel& model, const std::vector<int32_t>& prompt, const SamplingOptions& o,
                        const std::function<bool(int32_t)>& on_token = {});

// Inference throughput on random tokens: a prefill of batch x prompt tokens (in pieces of prefill_chunk when > 0), run
// twice and timed each time, then `decode_steps` greedy decode steps of the whole batch through a BatchDecoder
// (fixed-memory slots; CUDA graphs on the GPU unless cuda_graphs is false), each timed by wall clock until its picks
// are read back (as a server would). The first decode step is left out as warmup. The prompts are prefilled again to
// join the decoder; that prefill is not timed.
struct InferThroughput {
  // prefill_s: the second prefill (kernels loaded, memory pool grown, as in a serving process after its first
  // request); prefill_cold_s: the first.
  double prefill_s = 0, prefill_tokens_per_s = 0, prefill_cold_s = 0;
  double decode_ms_per_step = 0, decode_tokens_per_s = 0;
  int64_t state_bytes = 0;  // the decoder's slots (fixed memory: state, conv and KV caches)
  // Bytes a timed decode step moves at least: the weights it multiplies by (compute dtype; the embedding table only
  // when tied to the head) and its slots' traffic at the mean length of the timed steps (InferenceState::decode_bytes).
  int64_t step_bytes = 0;
  int64_t peak_bytes = 0;   // device memory held by tensors at most (0 on the CPU)
  bool finite = true;       // every logit read back was finite (a non-finite one in decode throws)
  bool cuda_graphs = false;  // the decode steps replayed CUDA graphs
};
InferThroughput infer_throughput(LanguageModel& model, int64_t batch, int64_t prompt, int64_t decode_steps,
                                 int64_t prefill_chunk = 0, uint64_t seed = 1, bool cuda_graphs = true,
                                 DType state_dtype = DType::f32);

}  // namespace gdn2
