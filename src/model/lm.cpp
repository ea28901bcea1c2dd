// The language model: embedding, blocks, final norm and LM head; training and cached inference.
#include "gdn2/model/lm.h"

#include "gdn2/ops/dense.h"
#include "gdn2/ops/norm.h"
#include "model/block.h"
#include "model/params.h"

namespace gdn2 {

InferenceState::InferenceState() = default;
InferenceState::~InferenceState() = default;
InferenceState::InferenceState(InferenceState&&) noexcept = default;
InferenceState& InferenceState::operator=(InferenceState&&) noexcept = default;

int64_t InferenceState::bytes() const {
  int64_t n = 0;
  for (const LayerCache& c : layers) {
    for (const Tensor& t : c.conv) n += t.defined() ? static_cast<int64_t>(t.nbytes()) : 0;
    for (const Tensor* t : {&c.state, &c.k, &c.v}) n += t->defined() ? static_cast<int64_t>(t->nbytes()) : 0;
  }
  return n;
}

int64_t InferenceState::decode_bytes(int64_t length) const {
  int64_t n = 0;
  for (const LayerCache& c : layers) {
    for (const Tensor& t : c.conv) n += t.defined() ? 2 * static_cast<int64_t>(t.nbytes()) : 0;
    if (c.state.defined()) n += 2 * static_cast<int64_t>(c.state.nbytes());
    for (const Tensor* t : {&c.k, &c.v})
      if (t->defined()) n += static_cast<int64_t>(t->nbytes()) / t->size(1) * std::min(length, t->size(1));
  }
  return n;
}

LanguageModel::LanguageModel(const ModelConfig& config, DType dtype, Device device, std::optional<DType> compute)
    : config_(config),
      dtype_(dtype),
      params_(std::make_unique<ParamStore>(
          config, dtype, device, compute.value_or(device == Device::cuda && dtype == DType::f32 ? DType::bf16 : dtype))) {
  config_.validate("model config");
  for (int64_t i = 0; i < config_.num_layers(); ++i) blocks_.push_back(std::make_unique<Block>(config_, i, *params_));
}

LanguageModel::~LanguageModel() = default;

Device LanguageModel::device() const { return params_->device(); }
DType LanguageModel::compute_dtype() const { return params_->compute_dtype(); }

int64_t LanguageModel::num_params() const {
  int64_t n = 0;
  for (const Param& p : params_->all()) n += p.value.numel();
  return n;
}

void LanguageModel::init_random(uint64_t seed) {
  params_->init(seed, config_.initializer_range, config_.num_layers());
}

const Tensor& LanguageModel::head_weight() const {
  return params_->at(config_.tie_word_embeddings ? "model.embed_tokens.weight" : "lm_head.weight").w();
}

Tensor LanguageModel::embed(const Tensor& ids, bool check_gpu_ids) const {
  GDN2_CHECK(ids.dim() == 2 && ids.dtype() == DType::i32, ShapeError, "model input ids must be I32 [B, T], got ",
             ids.describe());
  return embedding_forward(ids, params_->at("model.embed_tokens.weight").w(), check_gpu_ids);
}

double LanguageModel::forward_loss(const Tensor& ids, const Tensor& targets, bool train, double grad_scale) {
  GDN2_CHECK(targets.dtype() == DType::i32 && targets.shape() == ids.shape(), ShapeError,
             "targets must be I32 shaped like ids ", ids.describe(), ", got ", targets.describe());
  const int64_t B = ids.size(0), T = ids.size(1), D = config_.hidden_size;
  Tensor h = embed(ids);
  for (auto& b : blocks_) h = b->forward(h, nullptr, train);
  RmsNormOptions nopt;
  nopt.eps = config_.rms_norm_eps;
  nopt.zero_centred = true;
  RmsNormResult fn = rms_norm_forward(h, params_->at("model.norm.weight").w(), Tensor(), nopt);
  Param& head = params_->at(config_.tie_word_embeddings ? "model.embed_tokens.weight" : "lm_head.weight");
  if (train)
    GDN2_CHECK(head.grad.defined(), ValueError, "training forward before params().zero_grad()");
  LmLoss loss = lm_head_cross_entropy(fn.y.reshape({B * T, D}), head.w(), targets.reshape({B * T}), train,
                                      train ? &head.grad_to_add() : nullptr, grad_scale);
  if (train) {
    saved_ids_ = ids;
    saved_final_in_ = h;
    saved_final_rstd_ = fn.rstd;
    saved_dh_ = loss.dh.reshape({B, T, D});
  } else {
    for (auto& b : blocks_) b->release();
  }
  return loss.loss;
}

void LanguageModel::backward() {
  GDN2_CHECK(saved_dh_.defined(), ValueError, "backward() without a training forward_loss()");
  RmsNormOptions nopt;
  nopt.eps = config_.rms_norm_eps;
  nopt.zero_centred = true;
  Param& norm = params_->at("model.norm.weight");
  RmsNormGrads g = rms_norm_backward(saved_dh_, saved_final_in_, saved_final_rstd_, norm.w(), Tensor(), nopt);
  norm.add_grad(g.dweight);
  Tensor dh = g.dx;
  for (auto it = blocks_.rbegin(); it != blocks_.rend(); ++it) {
    dh = (*it)->backward(dh);
    (*it)->release();
  }
  embedding_backward(dh, saved_ids_, params_->at("model.embed_tokens.weight").grad_to_add());
  params_->settle_grads();
  saved_ids_ = saved_final_in_ = saved_final_rstd_ = saved_dh_ = Tensor();
}

InferenceState LanguageModel::new_state(int64_t batch) const {
  GDN2_CHECK(batch > 0, ValueError, "inference batch must be positive, got ", batch);
  InferenceState s;
  s.layers.resize(static_cast<size_t>(config_.num_layers()));
  s.batch = batch;
  return s;
}

Tensor LanguageModel::forward_logits(const Tensor& ids, InferenceState* state, bool last_only) {
  const int64_t B = ids.size(0), T = ids.size(1), D = config_.hidden_size;
  GDN2_CHECK(T >= 1, ShapeError, "forward_logits needs at least one token, got ", ids.describe());
  if (state != nullptr)
    GDN2_CHECK(state->batch == B && state->layers.size() == blocks_.size(), ShapeError,
               "inference state is for batch ", state->batch, ", ids are ", ids.describe());
  Tensor h = embed(ids);
  for (size_t i = 0; i < blocks_.size(); ++i) {
    LayerCache* cache = state ? &state->layers[i] : nullptr;
    h = blocks_[i]->forward(h, cache, false);
    if (cache) cache->length += T;
  }
  if (state) state->length += T;
  if (last_only && T > 1) {
    Tensor last = Tensor::empty({B, 1, D}, h.dtype(), h.device());
    const size_t row = static_cast<size_t>(D) * dtype_size(h.dtype());
    copy_rows(last, 0, row, h, (T - 1) * row, T * row, row, B);
    h = last;
  }
  return head_logits(h);
}

Tensor LanguageModel::head_logits(const Tensor& h) const {
  RmsNormOptions nopt;
  nopt.eps = config_.rms_norm_eps;
  nopt.zero_centred = true;
  RmsNormResult fn = rms_norm_forward(h, params_->at("model.norm.weight").w(), Tensor(), nopt);
  return linear_forward(fn.y, head_weight());
}

InferenceState LanguageModel::new_slots(int64_t capacity, int64_t max_len, DType state_dtype) const {
  GDN2_CHECK(capacity > 0 && max_len > 0, ValueError, "slots need a positive capacity and length, got ", capacity,
             " x ", max_len);
  GDN2_CHECK(state_dtype == DType::f32 || (state_dtype == DType::bf16 && device() == Device::cuda), DTypeError,
             "slots keep recurrent states in F32, or BF16 on the GPU; got ", dtype_name(state_dtype), " on the ",
             device_name(device()));
  InferenceState s;
  s.batch = capacity;
  s.max_len = max_len;
  for (const auto& b : blocks_) s.layers.push_back(b->slot_cache(capacity, max_len, device(), compute_dtype(), state_dtype));
  return s;
}

namespace {

// Row drow (dimension 0) of dst = row srow of src: same dtype and trailing shape.
void copy_row(Tensor& dst, int64_t drow, const Tensor& src, int64_t srow) {
  const size_t bytes = src.nbytes() / static_cast<size_t>(src.size(0));
  GDN2_CHECK(src.dtype() == dst.dtype() && bytes * static_cast<size_t>(dst.size(0)) == dst.nbytes(), ShapeError,
             "slot copy: a row of ", src.describe(), " does not fit a row of ", dst.describe());
  copy_rows(dst, static_cast<size_t>(drow) * bytes, bytes, src, static_cast<size_t>(srow) * bytes, bytes, bytes, 1);
}

}  // namespace

void LanguageModel::load_slot(InferenceState& slots, int64_t row, const InferenceState& seq, int64_t seq_row) const {
  GDN2_CHECK(slots.max_len > 0 && row >= 0 && row < slots.batch, ValueError, "load_slot: row ", row,
             " outside the slots' capacity ", slots.batch);
  GDN2_CHECK(seq_row >= 0 && seq_row < seq.batch && seq.layers.size() == slots.layers.size() &&
                 seq.length <= slots.max_len,
             ValueError, "load_slot: row ", seq_row, " of a state of batch ", seq.batch, " with ", seq.length,
             " tokens does not fit slots of ", slots.max_len, " tokens");
  for (size_t i = 0; i < slots.layers.size(); ++i) {
    LayerCache& dst = slots.layers[i];
    const LayerCache& src = seq.layers[i];
    for (Tensor* t : {&dst.conv[0], &dst.conv[1], &dst.conv[2], &dst.state}) {
      if (!t->defined()) continue;
      const Tensor& from = t == &dst.state ? src.state : src.conv[t - dst.conv];
      if (from.defined())
        copy_row(*t, row, from.to(t->dtype()), seq_row);
      else
        copy_row(*t, row, Tensor::zeros(t->slice0(0, 1).shape(), t->dtype(), t->device()), 0);
    }
    if (dst.k.defined() && src.k.defined()) {  // the kept keys are the last ones: positions [length − n, length)
      const int64_t n = src.k.size(1), L = dst.k.size(1);
      const size_t tok = dst.k.nbytes() / static_cast<size_t>(dst.k.size(0) * L), width = tok * n;
      const size_t at = (static_cast<size_t>(row * L) + static_cast<size_t>(seq.length - n)) * tok;
      copy_rows(dst.k, at, width, src.k.to(dst.k.dtype()), static_cast<size_t>(seq_row) * width, width, width, 1);
      copy_rows(dst.v, at, width, src.v.to(dst.v.dtype()), static_cast<size_t>(seq_row) * width, width, width, 1);
    }
  }
}

void LanguageModel::move_slot(InferenceState& slots, int64_t from, int64_t to) const {
  GDN2_CHECK(slots.max_len > 0 && from >= 0 && to >= 0 && from < slots.batch && to < slots.batch, ValueError,
             "move_slot: rows ", from, " -> ", to, " outside the slots' capacity ", slots.batch);
  if (from == to) return;
  for (LayerCache& c : slots.layers)
    for (Tensor* t : {&c.conv[0], &c.conv[1], &c.conv[2], &c.state, &c.k, &c.v})
      if (t->defined()) {
        const size_t row = t->nbytes() / static_cast<size_t>(t->size(0));
        copy_rows(*t, static_cast<size_t>(to) * row, row, *t, static_cast<size_t>(from) * row, row, row, 1);
      }
}

Tensor LanguageModel::decode_slots(const Tensor& ids, const Tensor& positions, const Tensor& lengths,
                                   InferenceState& slots) {
  const int64_t N = ids.numel();
  GDN2_CHECK(slots.max_len > 0 && slots.layers.size() == blocks_.size(), ValueError,
             "decode_slots needs the model's slots (new_slots)");
  GDN2_CHECK(N >= 1 && N <= slots.batch && ids.dim() == 1, ShapeError, "decode_slots: ids must be I32 [N] with 1 <= N <= ",
             slots.batch, ", got ", ids.describe());
  for (const Tensor* t : {&ids, &positions, &lengths})
    GDN2_CHECK(t->dtype() == DType::i32 && t->shape() == Shape{N} && t->device() == device(), ShapeError,
               "decode_slots: ids, positions and lengths must be I32 [", N, "] on the model's device, got ",
               t->describe());
  Tensor h = embed(ids.reshape({N, 1}), false);
  for (size_t i = 0; i < blocks_.size(); ++i) {
    LayerCache& slot = slots.layers[i];
    LayerCache view;  // the first N rows of the slot caches, updated in place
    for (int c = 0; c < 3; ++c)
      if (slot.conv[c].defined()) view.conv[c] = slot.conv[c].slice0(0, N);
    if (slot.state.defined()) view.state = slot.state.slice0(0, N);
    view.k = slot.k;
    view.v = slot.v;
    view.positions = positions;
    view.lengths = lengths;
    h = blocks_[i]->forward(h, &view, false);
    // A layer that returned a fresh state rather than updating its view (the F64 path) has it copied back.
    for (int c = 0; c < 3; ++c)
      if (view.conv[c].defined() && view.conv[c].raw() != slot.conv[c].raw())
        copy_rows(slot.conv[c], 0, view.conv[c].nbytes(), view.conv[c], 0, view.conv[c].nbytes(),
                  view.conv[c].nbytes(), 1);
    if (view.state.defined() && view.state.raw() != slot.state.raw())
      copy_rows(slot.state, 0, view.state.nbytes(), view.state.to(slot.state.dtype()), 0, view.state.nbytes(),
                view.state.nbytes(), 1);
  }
  return head_logits(h).reshape({N, config_.vocab_size});
}

}  // namespace gdn2
