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

Tensor LanguageModel::embed(const Tensor& ids) const {
  GDN2_CHECK(ids.dim() == 2 && ids.dtype() == DType::i32, ShapeError, "model input ids must be I32 [B, T], got ",
             ids.describe());
  return embedding_forward(ids, params_->at("model.embed_tokens.weight").w());
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
                                      train ? &head.grad : nullptr, grad_scale);
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
  add_inplace(norm.grad, g.dweight);
  Tensor dh = g.dx;
  for (auto it = blocks_.rbegin(); it != blocks_.rend(); ++it) {
    dh = (*it)->backward(dh);
    (*it)->release();
  }
  embedding_backward(dh, saved_ids_, params_->at("model.embed_tokens.weight").grad);
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
  RmsNormOptions nopt;
  nopt.eps = config_.rms_norm_eps;
  nopt.zero_centred = true;
  RmsNormResult fn = rms_norm_forward(h, params_->at("model.norm.weight").w(), Tensor(), nopt);
  return linear_forward(fn.y, head_weight());
}

}  // namespace gdn2
