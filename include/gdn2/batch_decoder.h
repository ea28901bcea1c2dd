// Serving many sequences at once with continuous batching: sequences join (their prompts prefilled, in chunks when
// asked) and leave between decode steps; every step decodes one token for each active sequence in one batch over
// fixed-memory slots (LanguageModel::new_slots: per sequence the linear layers' conv caches and recurrent state, and
// the attention layers' KV cache of max_len tokens). On the GPU each step is replayed as a CUDA graph, one graph per
// power-of-two batch bucket, captured when the decoder is made.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "gdn2/generate.h"
#include "gdn2/model/lm.h"

namespace gdn2 {

struct BatchDecoderOptions {
  int64_t capacity = 16;      // sequences decoded together at most
  int64_t max_len = 4096;     // tokens per sequence at most (prompt and generated)
  int64_t prefill_chunk = 0;  // > 0: prompts are fed in pieces of this many tokens (chunked prefill)
  bool cuda_graphs = true;    // GPU: replay each decode step as a CUDA graph
  DType state_dtype = DType::f32;  // the linear layers' recurrent states: F32, or BF16 on the GPU (half the memory and
                                   // state traffic per step; the update still computes in F32)
};

struct DecodedToken {
  int64_t seq = 0;        // the id join() gave
  int32_t token = 0;
  bool finished = false;  // the sequence's last token: it has left
};

class BatchDecoder {
 public:
  BatchDecoder(LanguageModel& model, const BatchDecoderOptions& options);
  ~BatchDecoder();
  BatchDecoder(const BatchDecoder&) = delete;
  BatchDecoder& operator=(const BatchDecoder&) = delete;

  // Prefills the prompts (prompts of one length together as a batch) and admits them; returns their ids. Each one's
  // first token is picked from its prefill's logits and comes out of the next step(). ValueError (and nothing
  // admitted) when they do not fit the free slots, a prompt is empty or longer than max_len, a token id is outside
  // the vocabulary, or the sampling options are invalid.
  std::vector<int64_t> join(const std::vector<std::vector<int32_t>>& prompts, const SamplingOptions& sampling);
  // Removes an active sequence; its slot is reused. ValueError for an id that is not active.
  void leave(int64_t seq);
  // One step: every active sequence emits its next token; those that reach max_new_tokens, a stop id or max_len
  // finish and leave; the rest are decoded together (one token each) and pick their following token.
  std::vector<DecodedToken> step();

  int64_t active() const;
  int64_t capacity() const;
  int64_t state_bytes() const;  // the slots' fixed memory
  const InferenceState& slots() const;
  bool uses_cuda_graphs() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace gdn2
