// Pre-norm residual block with zero-centred RMSNorms (Qwen3.5) and a SwiGLU MLP.
#include "model/block.h"

#include "gdn2/ops/dense.h"
#include "gdn2/ops/norm.h"
#include "model/gated_attention.h"
#include "model/linear_attention.h"
#include "model/param_specs.h"

namespace gdn2 {

Tensor mixer_output(const Tensor& x, const Tensor& weight, bool save, Tensor* residual) {
  return save && residual != nullptr ? linear_forward(x, weight, Tensor(), nullptr, *residual)
                                     : linear_forward(x, weight, Tensor(), residual);
}

std::unique_ptr<Mixer> make_mixer(const ModelConfig& c, int64_t layer, ParamStore& params) {
  const LayerKind kind = c.layers[static_cast<size_t>(layer)];
  if (layer_is_linear(kind)) return std::make_unique<LinearAttention>(c, kind, mixer_prefix(c, layer), params);
  return std::make_unique<GatedAttention>(c, kind, mixer_prefix(c, layer), params);
}

Block::Block(const ModelConfig& c, int64_t layer, ParamStore& params)
    : prefix_(layer_prefix(layer)), params_(params), eps_(c.rms_norm_eps), mixer_(make_mixer(c, layer, params)) {}

namespace {
RmsNormOptions zero_centred(double eps) {
  RmsNormOptions o;
  o.eps = eps;
  o.zero_centred = true;
  return o;
}
}  // namespace

Tensor Block::forward(Tensor x, LayerCache* cache, bool save) {
  const RmsNormOptions nopt = zero_centred(eps_);
  RmsNormResult n1 = rms_norm_forward(x, p("input_layernorm.weight").w(), Tensor(), nopt);
  if (!save) {  // inference: the residual adds inside the output products, gate and up in one product
    Tensor h = mixer_->forward(n1.y, cache, false, &x);  // x += mixer(n1)
    RmsNormResult n2 = rms_norm_forward(h, p("post_attention_layernorm.weight").w(), Tensor(), nopt);
    const Tensor act = swiglu_forward(linear_forward(n2.y, params_.group_weight(prefix_ + "mlp.gate_up")));
    return linear_forward(act, p("mlp.down_proj.weight").w(), Tensor(), &h);
  }
  const Tensor h = mixer_->forward(n1.y, cache, save, &x);  // x + mixer(n1), x kept
  RmsNormResult n2 = rms_norm_forward(h, p("post_attention_layernorm.weight").w(), Tensor(), nopt);
  const Tensor gate = linear_forward(n2.y, p("mlp.gate_proj.weight").w());
  const Tensor up = linear_forward(n2.y, p("mlp.up_proj.weight").w());
  const Tensor act = swiglu_forward(gate, up);
  Tensor y = linear_forward(act, p("mlp.down_proj.weight").w(), Tensor(), nullptr, h);  // h + mlp
  if (save) saved_ = Saved{x, n1.y, n1.rstd, h, n2.y, n2.rstd, gate, up, act};
  return y;
}

Tensor Block::backward(const Tensor& dy) {
  const Saved& s = saved_;
  GDN2_CHECK(s.x.defined(), ValueError, prefix_, ": backward without a saved forward");
  const RmsNormOptions nopt = zero_centred(eps_);
  const Tensor d_act = param_linear_backward(dy, s.act, p("mlp.down_proj.weight"));
  Tensor d_gate, d_up;
  swiglu_backward(d_act, s.gate, s.up, d_gate, d_up);
  Tensor d_n2 = param_linear_backward(d_gate, s.n2, p("mlp.gate_proj.weight"));
  param_linear_backward(d_up, s.n2, p("mlp.up_proj.weight"), nullptr, &d_n2);
  // dh = dy + the norm's part, and dx = dh + the mixer's norm's part: the residual paths' adds inside the norms.
  RmsNormGrads g2 = rms_norm_backward(d_n2, s.h, s.r2, p("post_attention_layernorm.weight").w(), Tensor(), nopt, dy);
  p("post_attention_layernorm.weight").add_grad(g2.dweight);
  const Tensor dh = g2.dx;
  const Tensor d_n1 = mixer_->backward(dh);
  RmsNormGrads g1 = rms_norm_backward(d_n1, s.x, s.r1, p("input_layernorm.weight").w(), Tensor(), nopt, dh);
  p("input_layernorm.weight").add_grad(g1.dweight);
  return g1.dx;
}

void Block::release() {
  saved_ = Saved{};
  mixer_->release();
}

}  // namespace gdn2
