// `gdn2 train`: train a model from a config on prepared token shards, then save it and print a sample;
// `gdn2 data prepare`: tokenize a corpus file into train/held-out shards.
#include <cstdio>
#include <filesystem>

#include "gdn2/backend.h"
#include "gdn2/data/corpus.h"
#include "gdn2/data/prepare.h"
#include "gdn2/distributed.h"
#include "gdn2/generate.h"
#include "gdn2/model/checkpoint.h"
#include "gdn2/tokenizer.h"
#include "gdn2/train.h"
#include "tools/cli.h"

namespace gdn2::cli {

int run_generate(const std::string& model_dir, const std::string& tokenizer_path, const std::string& prompt,
                 const SamplingOptions& so, Device device);

namespace {

struct TrainArgs {
  std::string config, data, tokenizer, sample_prompt = "The";
  TrainOptions opt;
  uint64_t init_seed = 0;
  int64_t sample_tokens = 80;
  int threads = 0;
  std::string backend = "cpu";
};

int run_train(TrainArgs& a) {
  set_cpu_threads(a.threads);
  ModelConfig cfg = ModelConfig::load(a.config);
  const TokenDataset data = TokenDataset::open(a.data);
  if (cfg.eos_token_id < 0) cfg.eos_token_id = data.eos_id();
  GDN2_CHECK(static_cast<int64_t>(data.vocab_size()) <= cfg.vocab_size, ValueError, a.config, ": vocab_size ",
             cfg.vocab_size, " is smaller than the data's ", data.vocab_size());
  const Backend backend = backend_from_name(a.backend);
  backend_require(backend);
  const Device device = backend == Backend::cuda ? Device::cuda : Device::cpu;
  // Launched by torchrun / mpirun with a world of several processes: data parallel, one GPU each (chosen before the
  // model takes any device memory).
  std::unique_ptr<DataParallel> dp;
  if (const auto env = dist_env_from_environment(); env && env->world > 1) {
    GDN2_CHECK(backend == Backend::cuda, ValueError, "data-parallel training (WORLD_SIZE ", env->world,
               ") needs --backend cuda");
    dp = std::make_unique<DataParallel>(*env);
    a.opt.data_parallel = dp.get();
    if (dp->rank() != 0) a.sample_tokens = 0;
  }
  LanguageModel model(cfg, DType::f32, device);
  model.init_random(a.init_seed);
  std::fprintf(stderr, "model: %s\ndata: %s: %ld train tokens, %ld held-out tokens\n%s (compute %s)\n",
               cfg.describe().c_str(), a.data.c_str(), static_cast<long>(data.train_tokens()),
               static_cast<long>(data.val_shard().size()), backend_describe(backend).c_str(),
               std::string(dtype_name(model.compute_dtype())).c_str());
  const TrainResult r = train_model(model, data, a.opt);
  if (dp != nullptr && dp->rank() != 0) return 0;  // rank 0 reports and samples
  std::printf("trained %ld steps (%ld tokens) in %.1f s: %.0f tokens/s; final train loss %.4f, held-out loss %.4f\n",
              static_cast<long>(r.steps_done), static_cast<long>(r.tokens), r.seconds,
              static_cast<double>(r.tokens) / r.seconds, r.log.empty() ? 0.0 : r.log.back().loss, r.final_val_loss);
  if (r.steps_done < r.total_steps) {
    std::printf("stopped at step %ld of %ld; run the same command again to resume\n", static_cast<long>(r.steps_done),
                static_cast<long>(r.total_steps));
    return 0;
  }
  const std::string model_dir = a.opt.out_dir + "/model";
  if (!a.tokenizer.empty())
    std::filesystem::copy_file(a.tokenizer, model_dir + "/tokenizer.json",
                               std::filesystem::copy_options::overwrite_existing);
  std::printf("saved %s; loss curve %s/loss.png\n", model_dir.c_str(), a.opt.out_dir.c_str());
  if (!a.tokenizer.empty() && a.sample_tokens > 0) {
    std::printf("sample:\n");
    SamplingOptions so;
    so.max_new_tokens = a.sample_tokens;
    so.temperature = 0.8;
    so.top_p = 0.95;
    so.seed = 1;
    return run_generate(model_dir, a.tokenizer, a.sample_prompt, so, device);
  }
  return 0;
}

}  // namespace

void add_train_command(CLI::App& app, Context& ctx) {
  auto a = std::make_shared<TrainArgs>();
  TrainOptions& o = a->opt;
  CLI::App* cmd = app.add_subcommand("train", "train a model on token shards (CPU, or the GPU with --backend cuda)");
  cmd->add_option("--config", a->config, "model config.json")->required()->check(CLI::ExistingFile);
  cmd->add_option("--data", a->data, "token shard directory (gdn2 data prepare)")->required()->check(CLI::ExistingDirectory);
  cmd->add_option("--out", o.out_dir, "output directory: checkpoints/, model/, loss.png")->required();
  cmd->add_option("--tokenizer", a->tokenizer, "tokenizer.json, copied next to the model and used for the sample");
  cmd->add_option("--steps", o.steps, "optimizer steps")->check(CLI::Range(int64_t{1}, int64_t{1} << 40));
  cmd->add_option("--time-budget", o.time_budget_s, "seconds: size the run to this after 4 steps")->check(CLI::NonNegativeNumber);
  cmd->add_option("--batch", o.batch, "sequences per micro-batch")->check(CLI::Range(1, 1 << 16));
  cmd->add_option("--seq-len", o.seq_len, "tokens per sequence")->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--accum", o.accum, "gradient accumulation steps")->check(CLI::Range(1, 1 << 16));
  cmd->add_option("--lr", o.lr, "peak learning rate")->check(CLI::Range(1e-8, 1.0));
  cmd->add_option("--min-lr-ratio", o.min_lr_ratio, "final learning rate / peak")->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--warmup", o.warmup_steps, "warmup steps")->check(CLI::Range(0, 1 << 30));
  cmd->add_option("--schedule", o.schedule, "cosine or wsd")->check(CLI::IsMember({"cosine", "wsd"}));
  cmd->add_option("--weight-decay", o.weight_decay, "AdamW weight decay")->check(CLI::Range(0.0, 10.0));
  cmd->add_option("--clip", o.clip_norm, "gradient clipping norm (0: off)")->check(CLI::NonNegativeNumber);
  cmd->add_option("--seed", o.seed, "batch order seed");
  cmd->add_option("--init-seed", a->init_seed, "parameter initialisation seed");
  cmd->add_option("--eval-every", o.eval_every, "steps between held-out evaluations (0: only at the end)")->check(CLI::Range(0, 1 << 30));
  cmd->add_option("--eval-batches", o.eval_batches, "held-out batches per evaluation")->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--checkpoint-every", o.checkpoint_every, "steps between checkpoints (0: only at the end)")->check(CLI::Range(0, 1 << 30));
  cmd->add_flag("!--no-resume", o.resume, "start over even when OUT holds a checkpoint");
  cmd->add_flag("!--no-progress", o.progress, "no progress line");
  cmd->add_option("--stop-after", o.stop_after, "stop after this many steps (resume later)")->check(CLI::Range(0, 1 << 30));
  cmd->add_option("--sample-prompt", a->sample_prompt, "prompt of the sample printed at the end");
  cmd->add_option("--sample-tokens", a->sample_tokens, "length of that sample (0: none)")->check(CLI::Range(0, 1 << 16));
  cmd->add_option("--threads", a->threads, "CPU threads (0: all)")->check(CLI::Range(0, 4096));
  cmd->add_option("--backend", a->backend, "cpu, or cuda (BF16 mixed precision on the GPU)")
      ->check(CLI::IsMember({"cpu", "cuda"}));
  cmd->callback([a, &ctx] { ctx.exit_code = run_train(*a); });
}

}  // namespace gdn2::cli
