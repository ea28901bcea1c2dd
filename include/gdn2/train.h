// Training a language model on token shards: AdamW, warmup + cosine or WSD schedule, clipping, accumulation,
// held-out evaluation, periodic atomic checkpoints with exact resume, progress and a loss-curve PNG.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "gdn2/data/dataset.h"
#include "gdn2/distributed.h"
#include "gdn2/model/lm.h"

namespace gdn2 {

struct TrainOptions {
  std::string out_dir;             // checkpoints/, model/, loss.png, train_log.jsonl
  int64_t batch = 8, seq_len = 256, accum = 1;
  int64_t steps = 1000;            // total optimizer steps (see time_budget_s)
  double time_budget_s = 0;        // > 0: after 4 steps (timed from the 2nd), set `steps` so training takes about this long
  double lr = 3e-3, min_lr_ratio = 0.1;
  int64_t warmup_steps = 30;
  std::string schedule = "cosine"; // "cosine" or "wsd" (warmup, stable, then linear decay over the last 20%)
  double weight_decay = 0.1, beta1 = 0.9, beta2 = 0.95, adam_eps = 1e-8, clip_norm = 1.0;
  uint64_t seed = 1234;            // batch order (the model's init seed is the caller's)
  int64_t eval_every = 50, eval_batches = 16;
  int64_t checkpoint_every = 100;  // 0: only at the end
  int64_t keep_checkpoints = 2;
  bool resume = true;              // continue from out_dir/checkpoints/latest when present
  bool progress = true;            // progress line on stderr
  int64_t stop_after = 0;          // > 0: stop (with a checkpoint) after this many steps of this run (tests)
  // Data parallel across processes (one per GPU): `batch` is then the global batch, split evenly over the ranks;
  // gradients and losses are averaged; rank 0 alone prints, checkpoints and writes the outputs.
  DataParallel* data_parallel = nullptr;
};

struct StepLog {
  int64_t step = 0;
  double loss = 0, lr = 0, grad_norm = 0, tokens_per_s = 0;
  double val_loss = -1;  // when evaluated at this step
};

struct TrainResult {
  std::vector<StepLog> log;  // every step since step 1 (restored on resume)
  int64_t steps_done = 0, total_steps = 0, tokens = 0;
  double seconds = 0, final_val_loss = -1;
};

// Trains `model` in place. Throws ValueError on a non-finite loss (the last checkpoint stays intact).
TrainResult train_model(LanguageModel& model, const TokenDataset& data, TrainOptions options);

// Held-out loss: mean over up to max_batches batches of the val split.
double evaluate_loss(LanguageModel& model, const TokenDataset& data, int64_t batch, int64_t seq_len,
                     int64_t max_batches);

// Training throughput on random tokens: `warmup` untimed then `steps` timed optimizer steps (zero_grad, forward,
// backward, clipping at 1, AdamW) of batch x seq_len tokens, timed by wall clock until the device is idle.
struct ThroughputResult {
  double step_s = 0, tokens_per_s = 0;
  int64_t peak_bytes = 0;       // device memory held by tensors at most during the timed steps (0 on the CPU)
  std::vector<double> losses;   // every step's loss, warmup included
};
// With data_parallel, every rank runs `batch` sequences of its own and the gradients are averaged; tokens_per_s then
// counts all ranks' tokens.
ThroughputResult train_throughput(LanguageModel& model, int64_t batch, int64_t seq_len, int64_t warmup,
                                  int64_t steps, uint64_t seed = 1, DataParallel* data_parallel = nullptr);

// The learning rate at `step` (1-based) of `total` for the options' schedule.
double learning_rate(const TrainOptions& o, int64_t step, int64_t total);

}  // namespace gdn2
