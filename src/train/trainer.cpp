// The training loop: batches -> forward/backward -> clip -> AdamW, with evaluation, checkpoints, resume and plots.
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "gdn2/atomic_file.h"
#include "gdn2/model/checkpoint.h"
#include "gdn2/plot.h"
#include "gdn2/train.h"
#include "model/params.h"
#include "train/adamw.h"
#include "train/checkpoint_dir.h"

namespace gdn2 {

namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

int64_t effective_warmup(const TrainOptions& o, int64_t total) {
  return std::max<int64_t>(1, std::min(o.warmup_steps, std::max<int64_t>(1, total / 5)));
}

json state_json(const TrainOptions& o, const TrainResult& r) {
  json log = json::array();
  for (const StepLog& s : r.log) log.push_back({s.step, s.loss, s.lr, s.grad_norm, s.tokens_per_s, s.val_loss});
  return {{"format", "gdn2-train-state-v1"}, {"step", r.steps_done},   {"total_steps", r.total_steps},
          {"tokens", r.tokens},              {"seconds", r.seconds},   {"seed", o.seed},
          {"batch", o.batch},                {"seq_len", o.seq_len},   {"accum", o.accum},
          {"lr", o.lr},                      {"schedule", o.schedule}, {"log", log}};
}

void restore_state(const std::string& path, const TrainOptions& o, TrainResult& r) {
  std::ifstream f(path);
  GDN2_CHECK(f.good(), FormatError, path, ": missing trainer state");
  std::stringstream ss;
  ss << f.rdbuf();
  json j;
  try {
    j = json::parse(ss.str());
    GDN2_CHECK(j.at("format") == "gdn2-train-state-v1", FormatError, path, ": unknown format");
    auto same = [&](const char* key, auto value) {
      GDN2_CHECK(j.at(key) == value, ValueError, path, ": the checkpoint was trained with ", key, " = ", j.at(key).dump(),
                 ", this run asks for ", json(value).dump(), " (use a new --out directory or the same settings)");
    };
    same("seed", o.seed);
    same("batch", o.batch);
    same("seq_len", o.seq_len);
    same("accum", o.accum);
    r.steps_done = j.at("step").get<int64_t>();
    r.total_steps = j.at("total_steps").get<int64_t>();
    r.tokens = j.at("tokens").get<int64_t>();
    r.seconds = j.at("seconds").get<double>();
    r.log.clear();
    for (const json& e : j.at("log"))
      r.log.push_back({e.at(0).get<int64_t>(), e.at(1).get<double>(), e.at(2).get<double>(), e.at(3).get<double>(),
                       e.at(4).get<double>(), e.at(5).get<double>()});
  } catch (const json::exception& e) {
    GDN2_THROW(FormatError, path, ": malformed trainer state: ", e.what());
  }
  GDN2_CHECK(r.steps_done >= 0 && r.steps_done <= r.total_steps, FormatError, path, ": inconsistent steps");
}

void save_checkpoint(const LanguageModel& model, const AdamW& opt, const TrainOptions& o, const TrainResult& r) {
  checkpoint_commit(o.out_dir, r.steps_done, o.keep_checkpoints, [&](const std::string& dir) {
    model_save(model, dir);
    opt.save(dir + "/optimizer.safetensors");
    atomic_write_file(dir + "/trainer_state.json", state_json(o, r).dump(1) + "\n");
  });
}

std::string format_duration(double s) {
  char buf[32];
  const int64_t t = static_cast<int64_t>(s + 0.5);
  std::snprintf(buf, sizeof(buf), "%ld:%02ld", static_cast<long>(t / 60), static_cast<long>(t % 60));
  return buf;
}

void print_progress(const TrainOptions& o, const TrainResult& r, double ema_loss, double tok_s, double eta_s) {
  if (!o.progress) return;
  const bool tty = ::isatty(2) != 0;
  const int width = 24;
  const int filled = static_cast<int>(width * static_cast<double>(r.steps_done) / static_cast<double>(r.total_steps));
  std::string bar(static_cast<size_t>(filled), '=');
  if (filled < width) bar += '>' + std::string(static_cast<size_t>(width - filled - 1), ' ');
  const StepLog& last = r.log.back();
  std::fprintf(stderr, "%sstep %5ld/%ld [%s] loss %.4f lr %.2e |g| %.2f %6.0f tok/s ETA %s%s", tty ? "\r" : "",
               static_cast<long>(r.steps_done), static_cast<long>(r.total_steps), bar.c_str(), ema_loss, last.lr,
               last.grad_norm, tok_s, format_duration(eta_s).c_str(), tty ? "  " : "\n");
  std::fflush(stderr);
}

void write_outputs(const TrainOptions& o, const TrainResult& r) {
  std::string jsonl;
  for (const StepLog& s : r.log)
    jsonl += json({{"step", s.step}, {"loss", s.loss}, {"lr", s.lr}, {"grad_norm", s.grad_norm},
                   {"tokens_per_s", s.tokens_per_s}, {"val_loss", s.val_loss}})
                 .dump() +
             "\n";
  atomic_write_file(o.out_dir + "/train_log.jsonl", jsonl);
  PlotSeries train{"train loss", {}, {}, false}, val{"held-out loss", {}, {}, true};
  for (const StepLog& s : r.log) {
    train.x.push_back(static_cast<double>(s.step));
    train.y.push_back(s.loss);
    if (s.val_loss >= 0) {
      val.x.push_back(static_cast<double>(s.step));
      val.y.push_back(s.val_loss);
    }
  }
  std::vector<PlotSeries> series{train};
  if (!val.x.empty()) series.push_back(val);
  PlotOptions po;
  po.title = "gdn2 training loss";
  po.x_label = "step";
  po.y_label = "cross-entropy (nats/token)";
  if (!train.x.empty()) plot_png(o.out_dir + "/loss.png", series, po);
}

}  // namespace

double learning_rate(const TrainOptions& o, int64_t step, int64_t total) {
  const int64_t warm = effective_warmup(o, total);
  if (step <= warm) return o.lr * static_cast<double>(step) / static_cast<double>(warm);
  const double min_lr = o.lr * o.min_lr_ratio;
  if (o.schedule == "wsd") {
    const int64_t decay_start = total - std::max<int64_t>(1, total / 5);
    if (step <= decay_start) return o.lr;
    const double f = static_cast<double>(step - decay_start) / static_cast<double>(std::max<int64_t>(1, total - decay_start));
    return o.lr + (min_lr - o.lr) * std::min(1.0, f);
  }
  const double f = static_cast<double>(step - warm) / static_cast<double>(std::max<int64_t>(1, total - warm));
  return min_lr + 0.5 * (o.lr - min_lr) * (1 + std::cos(M_PI * std::min(1.0, f)));
}

double evaluate_loss(LanguageModel& model, const TokenDataset& data, int64_t batch, int64_t seq_len,
                     int64_t max_batches) {
  EvalBatches it = data.val_batches(batch, seq_len, max_batches);
  TokenBatch b;
  double sum = 0;
  int64_t n = 0;
  while (it.next(b)) {
    const int64_t rows = b.inputs.numel();
    sum += model.forward_loss(b.inputs, b.targets, false) * static_cast<double>(rows);
    n += rows;
  }
  GDN2_CHECK(n > 0, ValueError, "the held-out split has no window of ", seq_len + 1, " tokens");
  return sum / static_cast<double>(n);
}

TrainResult train_model(LanguageModel& model, const TokenDataset& data, TrainOptions o) {
  GDN2_CHECK(!o.out_dir.empty(), ValueError, "train: an output directory is required");
  GDN2_CHECK(o.batch >= 1 && o.seq_len >= 1 && o.accum >= 1 && o.steps >= 1, ValueError,
             "train: batch, seq_len, accum and steps must be positive");
  GDN2_CHECK(o.lr > 0 && o.lr < 1 && o.min_lr_ratio >= 0 && o.min_lr_ratio <= 1, ValueError, "train: bad learning rate");
  GDN2_CHECK(o.schedule == "cosine" || o.schedule == "wsd", ValueError, "train: schedule must be cosine or wsd");
  GDN2_CHECK(static_cast<int64_t>(data.vocab_size()) <= model.config().vocab_size, ValueError, "train: the data's vocab (",
             data.vocab_size(), ") is larger than the model's (", model.config().vocab_size, ")");
  DataParallel* dp = o.data_parallel;
  const bool lead = dp == nullptr || dp->rank() == 0;  // prints, checkpoints and writes the outputs
  const int64_t world = dp ? dp->world() : 1, rank = dp ? dp->rank() : 0;
  GDN2_CHECK(o.batch % world == 0, ValueError, "train: the batch (", o.batch, ") must split evenly over ", world,
             " ranks");
  if (!lead) o.progress = false;
  std::filesystem::create_directories(o.out_dir + "/checkpoints");
  AdamW opt(model.params(), {o.beta1, o.beta2, o.adam_eps, o.weight_decay});
  std::vector<Tensor*> grads, values;
  for (Param& p : model.params().all()) {
    grads.push_back(&p.grad);
    values.push_back(&p.value);
  }
  TrainResult r;
  r.total_steps = o.steps;
  bool schedule_fixed = o.time_budget_s <= 0;
  if (o.resume) {
    if (const auto dir = checkpoint_latest(o.out_dir)) {
      auto loaded = model_load(*dir, model.dtype());
      GDN2_CHECK(loaded->config().to_json_text() == model.config().to_json_text(), ValueError, *dir,
                 ": the checkpoint's config differs from this run's model");
      for (Param& p : model.params().all()) model.params().set(p, loaded->params().at(p.spec.name).value);
      opt.load(*dir + "/optimizer.safetensors");
      restore_state(*dir + "/trainer_state.json", o, r);
      schedule_fixed = true;
      if (o.progress)
        std::fprintf(stderr, "resuming from %s (step %ld of %ld)\n", dir->c_str(), static_cast<long>(r.steps_done),
                     static_cast<long>(r.total_steps));
    }
  }
  if (dp != nullptr) {  // every rank starts from rank 0's parameters
    dp->broadcast(values);
    for (Param& p : model.params().all()) model.params().refresh_compute(p);
  }
  const int64_t tokens_per_step = o.batch * o.seq_len * o.accum;
  const int64_t rows = o.batch / world;  // this rank's rows of each global batch
  const auto run_start = Clock::now();
  const double seconds_before = r.seconds;
  double ema = r.log.empty() ? -1 : r.log.back().loss;
  int64_t steps_this_run = 0;
  double first_step_end = 0;  // r.seconds after this run's first step
  while (r.steps_done < r.total_steps) {
    const int64_t step = r.steps_done + 1;
    const auto t0 = Clock::now();
    model.params().zero_grad();
    double loss = 0;
    for (int64_t a = 0; a < o.accum; ++a) {
      const TokenBatch b = data.sample(o.seed, static_cast<uint64_t>((step - 1) * o.accum + a), o.batch, o.seq_len);
      const Tensor inputs = b.inputs.slice0(rank * rows, (rank + 1) * rows);
      const Tensor targets = b.targets.slice0(rank * rows, (rank + 1) * rows);
      loss += model.forward_loss(inputs, targets, true, 1.0 / static_cast<double>(o.accum)) / static_cast<double>(o.accum);
      model.backward();
    }
    if (dp != nullptr) {
      dp->average(grads);
      loss = dp->average(loss);
    }
    GDN2_CHECK(std::isfinite(loss), ValueError, "train: the loss became ", loss, " at step ", step,
               "; the last checkpoint is intact — lower the learning rate (--lr) and resume");
    const double gnorm = opt.clip_grad_norm(o.clip_norm);
    const double lr = learning_rate(o, step, r.total_steps);
    opt.step(lr);
    const double dt = std::chrono::duration<double>(Clock::now() - t0).count();
    r.steps_done = step;
    r.tokens += tokens_per_step;
    r.seconds = seconds_before + std::chrono::duration<double>(Clock::now() - run_start).count();
    ++steps_this_run;
    StepLog s{step, loss, lr, gnorm, static_cast<double>(tokens_per_step) / dt, -1};
    if (steps_this_run == 1) first_step_end = r.seconds;
    if (!schedule_fixed && steps_this_run == 4) {
      // Size the run to the time budget from the step time of steps 2-4 (the first carries one-time set-up, such as
      // the GPU libraries' initialisation), counting the first step's time as spent.
      double per_step = (r.seconds - first_step_end) / 3.0;
      if (dp != nullptr) per_step = dp->average(per_step);  // every rank sizes the run alike
      r.total_steps = std::max<int64_t>(r.steps_done + 1,
                                        1 + static_cast<int64_t>((o.time_budget_s - first_step_end) / per_step));
      schedule_fixed = true;
    }
    const bool last = r.steps_done == r.total_steps;
    if ((o.eval_every > 0 && step % o.eval_every == 0) || last) {
      s.val_loss = evaluate_loss(model, data, o.batch, o.seq_len, o.eval_batches);
      r.final_val_loss = s.val_loss;
      if (o.progress)
        std::fprintf(stderr, "%sstep %ld: held-out loss %.4f\n", ::isatty(2) ? "\n" : "", static_cast<long>(step),
                     s.val_loss);
    }
    r.log.push_back(s);
    ema = ema < 0 ? loss : 0.9 * ema + 0.1 * loss;
    const double avg = r.seconds / static_cast<double>(r.steps_done);
    print_progress(o, r, ema, static_cast<double>(r.tokens) / r.seconds,
                   avg * static_cast<double>(r.total_steps - r.steps_done));
    const bool stop = o.stop_after > 0 && steps_this_run >= o.stop_after;
    if (lead && (last || stop || (o.checkpoint_every > 0 && step % o.checkpoint_every == 0)))
      save_checkpoint(model, opt, o, r);
    if (stop) break;
  }
  if (o.progress && ::isatty(2)) std::fprintf(stderr, "\n");
  if (!lead) return r;
  write_outputs(o, r);
  if (r.steps_done == r.total_steps) model_save(model, o.out_dir + "/model");
  return r;
}

}  // namespace gdn2
