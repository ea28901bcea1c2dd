// Qwen3.5 gated attention layer on the attention and RoPE ops.
#include "model/gated_attention.h"

#include <optional>

#include "gdn2/ops/dense.h"
#include "gdn2/ops/norm.h"
#include "gdn2/ops/rope.h"

namespace gdn2 {

namespace {

// [B, T1, ...] ++ [B, T2, ...] along dim 1.
Tensor concat_time(const Tensor& a, const Tensor& b) {
  if (!a.defined()) return b;
  const int64_t B = a.size(0), T1 = a.size(1), T2 = b.size(1), row = a.numel() / std::max<int64_t>(B * T1, 1);
  Shape s = a.shape();
  s[1] = T1 + T2;
  Tensor out = Tensor::empty(s, a.dtype(), a.device());
  const size_t e = dtype_size(a.dtype()), n1 = T1 * row * e, n2 = T2 * row * e;
  copy_rows(out, 0, n1 + n2, a, 0, n1, n1, B);
  copy_rows(out, n1, n1 + n2, b, 0, n2, n2, B);
  return out;
}

// The last n steps of [B, T, ...] along dim 1.
Tensor keep_last(const Tensor& a, int64_t n) {
  const int64_t B = a.size(0), T = a.size(1);
  if (n >= T) return a;
  const int64_t row = a.numel() / std::max<int64_t>(B * T, 1);
  Shape s = a.shape();
  s[1] = n;
  Tensor out = Tensor::empty(s, a.dtype(), a.device());
  const size_t e = dtype_size(a.dtype());
  copy_rows(out, 0, n * row * e, a, (T - n) * row * e, T * row * e, n * row * e, B);
  return out;
}

}  // namespace

GatedAttention::Projections GatedAttention::project(const Tensor& x, bool fused) {
  const int64_t B = x.size(0), T = x.size(1);
  Tensor q_gate, k_raw, v;
  if (fused) {  // inference of a few tokens, where launches dominate: the layer's q | k | v as one product
    std::vector<Tensor> parts = split_last(project_fused(x), params_.group_rows(prefix_ + "in"));
    q_gate = parts[0], k_raw = parts[1], v = parts[2];
  } else {  // training: one product per weight (the backward takes each on its own)
    q_gate = linear_forward(x, p("q_proj.weight").w());
    k_raw = linear_forward(x, p("k_proj.weight").w());
    v = linear_forward(x, p("v_proj.weight").w());
  }
  // q_proj gives, per head, the query and the output gate side by side.
  std::vector<Tensor> qg = split_last(q_gate.reshape({B, T, Hq_, 2 * hd_}), {hd_, hd_});
  return {qg[0], qg[1], k_raw.reshape({B, T, Hkv_, hd_}), v.reshape({B, T, Hkv_, hd_})};
}

Tensor GatedAttention::project_fused(const Tensor& x) { return linear_forward(x, params_.group_weight(prefix_ + "in")); }

GatedAttention::GatedAttention(const ModelConfig& c, LayerKind kind, std::string prefix, ParamStore& params)
    : prefix_(std::move(prefix)),
      params_(params),
      D_(c.hidden_size),
      Hq_(c.num_attention_heads),
      Hkv_(c.num_key_value_heads),
      hd_(c.head_dim),
      rotary_dim_(c.rotary_dim()),
      theta_(c.rope_theta),
      eps_(c.rms_norm_eps) {
  attn_.window = kind == LayerKind::sliding_attention ? c.sliding_window : 0;
}

Tensor GatedAttention::rope(const Tensor& x, int64_t start) const {
  if (rotary_dim_ == 0) return x;
  return rope_forward(x, start, RopeOptions{theta_, rotary_dim_});
}

Tensor GatedAttention::rope_back(const Tensor& dy) const {
  if (rotary_dim_ == 0) return dy;
  return rope_backward(dy, 0, RopeOptions{theta_, rotary_dim_});
}

LayerCache GatedAttention::slot_cache(int64_t capacity, int64_t max_len, Device device, DType dtype, DType) const {
  LayerCache c;
  c.k = Tensor::zeros({capacity, max_len, Hkv_, hd_}, dtype, device);
  c.v = Tensor::zeros({capacity, max_len, Hkv_, hd_}, dtype, device);
  return c;
}

// One token for each of the first N sequences of slot caches: the new key and value written at their positions, then
// decode attention over each sequence's own length. No wait for the device (graph capture).
Tensor GatedAttention::decode_slots(const Tensor& x, LayerCache& cache, Tensor* residual) {
  const int64_t N = x.size(0);
  GDN2_CHECK(x.size(1) == 1 && cache.positions.defined() && cache.lengths.defined() && cache.k.defined(), ShapeError,
             prefix_, ": slot decode takes one token per sequence and a slot cache, got ", x.describe());
  RmsNormOptions nopt;
  nopt.eps = eps_;
  nopt.zero_centred = true;
  const std::optional<RopeOptions> rope =
      rotary_dim_ > 0 ? std::optional<RopeOptions>(RopeOptions{theta_, rotary_dim_}) : std::nullopt;
  // The fused product's rows straight into the norms, rotation and cache writes, and the gate's sigmoid: one launch;
  // the attention multiplies its output by the gate as it writes it.
  const AttentionDecodeInputs in =
      attention_decode_inputs(project_fused(x).reshape({N, (2 * Hq_ + 2 * Hkv_) * hd_}), Hq_, Hkv_,
                              p("q_norm.weight").w(), p("k_norm.weight").w(), nopt, rope, cache.k, cache.v,
                              cache.positions);
  const Tensor gated = attention_decode(in.q, cache.k, cache.v, cache.lengths, attn_, in.gate);
  return mixer_output(gated.reshape({N, 1, Hq_ * hd_}), p("o_proj.weight").w(), false, residual);
}

Tensor GatedAttention::forward(const Tensor& x, LayerCache* cache, bool save, Tensor* residual) {
  GDN2_CHECK(x.dim() == 3 && x.size(2) == D_, ShapeError, prefix_, ": input must be [B, T, ", D_, "], got ",
             x.describe());
  GDN2_CHECK(!save || cache == nullptr, ValueError, prefix_, ": training forward takes no cache");
  if (cache != nullptr && cache->lengths.defined()) return decode_slots(x, *cache, residual);
  const int64_t B = x.size(0), T = x.size(1);
  const Projections pr = project(x, !save && B * T <= kFusedProjectionRows);
  const Tensor& v = pr.v;
  RmsNormOptions nopt;
  nopt.eps = eps_;
  nopt.zero_centred = true;
  RmsNormResult qn = rms_norm_forward(pr.q, p("q_norm.weight").w(), Tensor(), nopt);
  RmsNormResult kn = rms_norm_forward(pr.k, p("k_norm.weight").w(), Tensor(), nopt);
  const int64_t start = cache ? cache->length : 0;
  const Tensor q = rope(qn.y, start), k = rope(kn.y, start);
  Tensor keys = k, values = v;
  if (cache != nullptr) {
    cache->k = concat_time(cache->k, k);
    cache->v = concat_time(cache->v, v);
    keys = cache->k;
    values = cache->v;
  }
  // A training forward repeats its shape every step (cuDNN's plan built once pays); a prompt's prefill does not.
  AttentionOptions opt = attn_;
  opt.repeated_shape = save;
  AttentionResult a = attention_forward(q, keys, values, opt);
  if (cache != nullptr && attn_.window > 0) {  // later queries see at most window - 1 earlier keys
    cache->k = keep_last(cache->k, attn_.window - 1);
    cache->v = keep_last(cache->v, attn_.window - 1);
  }
  const Tensor gate_sig = sigmoid_forward(pr.gate);
  const Tensor gated = mul_forward(a.o, gate_sig).reshape({B, T, Hq_ * hd_});
  Tensor y = mixer_output(gated, p("o_proj.weight").w(), save, residual);
  if (save) saved_ = Saved{x, pr.q, pr.k, qn.rstd, kn.rstd, q, k, v, a.o, a.lse, gate_sig, gated};
  return y;
}

Tensor GatedAttention::backward(const Tensor& dy) {
  const Saved& s = saved_;
  GDN2_CHECK(s.x.defined(), ValueError, prefix_, ": backward without a saved forward");
  const int64_t B = s.x.size(0), T = s.x.size(1);
  const Tensor d_gated =
      param_linear_backward(dy, s.gated, p("o_proj.weight")).reshape({B, T, Hq_, hd_});
  const Tensor d_o = mul_forward(d_gated, s.gate_sig);
  const Tensor d_gate = sigmoid_backward(mul_forward(d_gated, s.o), s.gate_sig);
  AttentionOptions opt = attn_;
  opt.repeated_shape = true;  // the training forward's shape
  AttentionGrads ag = attention_backward(d_o, s.q, s.k, s.v, s.o, s.lse, opt);
  RmsNormOptions nopt;
  nopt.eps = eps_;
  nopt.zero_centred = true;
  RmsNormGrads qg = rms_norm_backward(rope_back(ag.dq), s.q_raw, s.q_rstd, p("q_norm.weight").w(), Tensor(), nopt);
  RmsNormGrads kg = rms_norm_backward(rope_back(ag.dk), s.k_raw, s.k_rstd, p("k_norm.weight").w(), Tensor(), nopt);
  p("q_norm.weight").add_grad(qg.dweight);
  p("k_norm.weight").add_grad(kg.dweight);
  const Tensor d_qproj = concat_last({qg.dx, d_gate}).reshape({B, T, Hq_ * 2 * hd_});
  Tensor dx = param_linear_backward(d_qproj, s.x, p("q_proj.weight"));
  param_linear_backward(kg.dx.reshape({B, T, Hkv_ * hd_}), s.x, p("k_proj.weight"), nullptr, &dx);
  param_linear_backward(ag.dv.reshape({B, T, Hkv_ * hd_}), s.x, p("v_proj.weight"), nullptr, &dx);
  return dx;
}

}  // namespace gdn2
