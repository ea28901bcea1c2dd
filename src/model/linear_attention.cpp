// GDN-2 / KDA / SSD-like / Qwen3.5 Gated DeltaNet layers: projections, short convs, gates, the GDN-2 recurrence,
// gated output norm; forward with optional inference cache, and the matching backward.
#include "model/linear_attention.h"

#include <unordered_map>

#include "gdn2/ops/dense.h"
#include "gdn2/ops/norm.h"
#include "gdn2/ops/short_conv.h"

namespace gdn2 {

namespace {

// Decode caches (short-conv inputs, recurrent state) are kept in F32 (F64 for F64 models).
DType state_dtype(const Tensor& x) { return x.dtype() == DType::f64 ? DType::f64 : DType::f32; }

Tensor doubled(const Tensor& x) {
  Tensor y = x.clone();
  scale_inplace(y, 2.0);
  return y;
}

}  // namespace

LinearAttention::LinearAttention(const ModelConfig& c, LayerKind kind, std::string prefix, ParamStore& params)
    : kind_(kind),
      prefix_(std::move(prefix)),
      params_(params),
      D_(c.hidden_size),
      H_(c.linear_num_key_heads),
      K_(c.linear_key_head_dim),
      HV_(c.linear_num_value_heads),
      V_(c.linear_value_head_dim),
      Hg_(kind == LayerKind::kda || kind == LayerKind::gdn ? c.linear_num_value_heads : c.linear_num_key_heads),
      W_(c.linear_conv_kernel_dim),
      neg_eig_(c.allow_neg_eigval),
      norm_eps_(c.linear_norm_eps) {}

LayerCache LinearAttention::slot_cache(int64_t capacity, int64_t, Device device, DType dtype,
                                       DType state_dtype) const {
  LayerCache c;
  const DType sd = dtype == DType::f64 ? DType::f64 : DType::f32;  // the conv caches
  if (kind_ == LayerKind::gdn) {
    c.conv[0] = Tensor::zeros({capacity, 2 * H_ * K_ + HV_ * V_, W_ - 1}, sd, device);
  } else {
    c.conv[0] = Tensor::zeros({capacity, H_ * K_, W_ - 1}, sd, device);
    c.conv[1] = Tensor::zeros({capacity, H_ * K_, W_ - 1}, sd, device);
    c.conv[2] = Tensor::zeros({capacity, HV_ * V_, W_ - 1}, sd, device);
  }
  c.state = Tensor::zeros({capacity, HV_, K_, V_}, dtype == DType::f64 ? sd : state_dtype, device);
  return c;
}

Gdn2Options LinearAttention::rec_options(const Tensor& x) const {
  Gdn2Options opt;
  opt.qk_l2norm = true;
  opt.compute = x.dtype() == DType::f64 ? DType::f64 : DType::f32;
  opt.grads_like_inputs = true;  // the backward's gradients in the activations' dtype
  return opt;
}

Tensor LinearAttention::proj(const char* name, const Tensor& x, const char* bias) {
  return linear_forward(x, p(name).w(), bias ? p(bias).w() : Tensor());
}

Tensor LinearAttention::proj_back(const char* name, const Tensor& dy, const Tensor& x, const char* bias, Tensor* into) {
  return param_linear_backward(dy, x, p(name), bias ? &p(bias) : nullptr, into);
}

std::vector<Tensor> LinearAttention::conv_step(int i, const char* name, const Tensor& x, LayerCache& cache,
                                               const std::vector<int64_t>& sizes) {
  const Tensor& w = p(name).w();
  const int64_t B = x.size(0), C = x.size(2);
  Tensor& state = cache.conv[i];
  if (!state.defined()) state = Tensor::zeros({B, C, w.size(-1) - 1}, state_dtype(x), x.device());
  std::vector<Tensor> parts = short_conv_step_split(x.reshape({B, C}), state, w, Tensor(), ConvActivation::silu, sizes);
  for (Tensor& part : parts) part = part.reshape({B, 1, part.size(1)});
  return parts;
}

Tensor LinearAttention::conv(int i, const char* name, const Tensor& x, LayerCache* cache, bool save) {
  Tensor y;
  if (cache != nullptr && x.size(1) == 1) {
    y = conv_step(i, name, x, *cache, {x.size(2)})[0];
  } else {
    ShortConvResult r = short_conv_forward(x, p(name).w(), Tensor(), ConvActivation::silu, Tensor(),
                                           cache ? cache->conv[i] : Tensor(), cache != nullptr);
    if (cache != nullptr) cache->conv[i] = r.final_cache;
    y = r.y;
  }
  if (save) {
    saved_.pre_conv[i] = x;
    saved_.post_conv[i] = y;
  }
  return y;
}

std::vector<Tensor> LinearAttention::conv_split(int i, const char* name, const Tensor& x, LayerCache* cache, bool save,
                                                const std::vector<int64_t>& sizes) {
  if (cache != nullptr && x.size(1) == 1 && !save) return conv_step(i, name, x, *cache, sizes);
  return split_last(conv(i, name, x, cache, save), sizes);
}

Tensor LinearAttention::conv_back(int i, const char* name, const Tensor& dy) {
  ShortConvGrads g = short_conv_backward(dy, saved_.pre_conv[i], p(name).w(), Tensor(), ConvActivation::silu);
  p(name).add_grad(g.dweight);
  return g.dx;
}

Tensor LinearAttention::forward(const Tensor& x, LayerCache* cache, bool save, Tensor* residual) {
  GDN2_CHECK(x.dim() == 3 && x.size(2) == D_, ShapeError, prefix_, ": input must be [B, T, ", D_, "], got ",
             x.describe());
  const int64_t B = x.size(0), T = x.size(1);
  if (save) saved_ = Saved{};
  // x's input projections by weight name. Training: one product per weight (the backward takes each on its own).
  // Inference of a few tokens (decode, small prefill pieces), where launches dominate: one product with the layer's
  // input group (its weights are one matrix) and one split.
  std::unordered_map<std::string, Tensor> fused;
  if (!save && B * T <= kFusedProjectionRows) {
    const std::string group = prefix_ + "in";
    const std::vector<std::string>& names = params_.group_names(group);
    std::vector<Tensor> parts = split_last(linear_forward(x, params_.group_weight(group)), params_.group_rows(group));
    for (size_t i = 0; i < names.size(); ++i) fused[names[i].substr(prefix_.size())] = std::move(parts[i]);
  }
  auto proj_in = [&](const char* name) { return fused.empty() ? proj(name, x) : fused.at(name); };
  Gdn2Inputs in;
  // Gates: decay g (log space, formed in the recurrence op from its pre-activation f, A_log and dt_bias), erase b,
  // write w. Before q, k and v: a decode step's recurrence then directly follows the short conv, whose kernel lets it
  // start early (the step fetches its state into L2 before it waits for q, k and v).
  Tensor f_low, b_sig, w_sig;
  // A decode step (one token with a cache; not the F64 path) leaves the erase and write gates' sigmoid to the step
  // op, which applies it as it loads them (Gdn2Options::gates_logits), unless b is doubled (negative eigenvalues).
  const bool step = cache != nullptr && T == 1 && x.dtype() != DType::f64;
  const bool logits = step && !neg_eig_;
  auto gate_of = [&](const Tensor& logit, Tensor& sig) {
    if (logits) return logit;
    sig = sigmoid_forward(logit);
    return sig;
  };
  in.A_log = p("A_log").w();
  in.dt_bias = p("dt_bias").w();
  if (kind_ == LayerKind::gdn) {
    in.g_log = proj_in("in_proj_a.weight");  // [B, T, HV]
    const Tensor b = gate_of(proj_in("in_proj_b.weight"), b_sig);
    in.b = neg_eig_ ? doubled(b) : b;
    in.w = in.b;
  } else {
    f_low = proj_in("f_proj.0.weight");
    in.g_log = proj("f_proj.1.weight", f_low).reshape({B, T, Hg_, K_});
    if (kind_ == LayerKind::gdn2) {
      const Tensor b = gate_of(proj_in("b_proj.weight"), b_sig);
      in.b = (neg_eig_ ? doubled(b) : b).reshape({B, T, H_, K_});
    } else if (kind_ == LayerKind::kda) {
      const Tensor b = gate_of(proj_in("b_proj.weight"), b_sig);  // β [B, T, HV]
      in.b = neg_eig_ ? doubled(b) : b;
      in.w = in.b;
    }
    if (kind_ != LayerKind::kda) in.w = gate_of(proj_in("w_proj.weight"), w_sig).reshape({B, T, HV_, V_});
  }
  // q, k, v through projections, short causal convs and SiLU.
  if (kind_ == LayerKind::gdn) {
    std::vector<Tensor> parts =
        conv_split(0, "conv1d.weight", proj_in("in_proj_qkv.weight"), cache, save, {H_ * K_, H_ * K_, HV_ * V_});
    in.q = parts[0].reshape({B, T, H_, K_});
    in.k = parts[1].reshape({B, T, H_, K_});
    in.v = parts[2].reshape({B, T, HV_, V_});
  } else {
    in.q = conv(0, "q_conv1d.weight", proj_in("q_proj.weight"), cache, save).reshape({B, T, H_, K_});
    in.k = conv(1, "k_conv1d.weight", proj_in("k_proj.weight"), cache, save).reshape({B, T, H_, K_});
    in.v = conv(2, "v_conv1d.weight", proj_in("v_proj.weight"), cache, save).reshape({B, T, HV_, V_});
  }
  // The recurrence: chunked for sequences, the in-place step for single-token decode. A training forward on the GPU
  // keeps the chunk states and workspace, so that the backward runs no forward kernel again.
  Gdn2Options opt = rec_options(x);
  opt.chunk_states = save && !x.is_cpu();
  opt.gates_logits = logits;
  Tensor o;
  Gdn2Outputs r;
  if (step) {
    if (!cache->state.defined()) cache->state = Tensor::zeros({B, HV_, K_, V_}, DType::f32, x.device());
    o = gdn2_recurrent_step(in, cache->state, opt);
  } else {
    if (cache != nullptr) in.h0 = cache->state;
    r = gdn2_chunk_fwd(in, opt);
    o = r.o;
    if (cache != nullptr) cache->state = r.ht;
    in.h0 = Tensor();
  }
  // Gated output norm and projection.
  Tensor gate_low, gate;
  RmsNormOptions nopt;
  nopt.eps = norm_eps_;
  const char* norm_name = kind_ == LayerKind::gdn ? "norm.weight" : "o_norm.weight";
  if (kind_ == LayerKind::gdn) {
    gate = proj_in("in_proj_z.weight").reshape({B, T, HV_, V_});
    nopt.gate_activation = NormGateActivation::silu;
  } else {
    gate_low = proj_in("g_proj.0.weight");
    gate = proj("g_proj.1.weight", gate_low, "g_proj.1.bias").reshape({B, T, HV_, V_});
    nopt.gate_activation = NormGateActivation::sigmoid;
  }
  RmsNormResult nr = rms_norm_forward(o, p(norm_name).w(), gate, nopt);
  const Tensor normed = nr.y.reshape({B, T, HV_ * V_});
  Tensor y = mixer_output(normed, p(kind_ == LayerKind::gdn ? "out_proj.weight" : "o_proj.weight").w(), save, residual);
  if (save) {
    saved_.x = x;
    saved_.f_low = f_low;
    saved_.h = r.h;
    saved_.work = r.work;
    saved_.b_sig = b_sig;
    saved_.w_sig = w_sig;
    saved_.rec = in;
    saved_.o = o;
    saved_.o_rstd = nr.rstd;
    saved_.gate_low = gate_low;
    saved_.gate = gate;
    saved_.normed = normed;
  }
  return y;
}

Tensor LinearAttention::backward(const Tensor& dy) {
  const Saved& s = saved_;
  GDN2_CHECK(s.x.defined(), ValueError, prefix_, ": backward without a saved forward");
  const Tensor& x = s.x;
  const int64_t B = x.size(0), T = x.size(1);
  const bool gdn = kind_ == LayerKind::gdn;
  // Output projection and gated norm.
  const Tensor d_normed = proj_back(gdn ? "out_proj.weight" : "o_proj.weight", dy, s.normed);
  RmsNormOptions nopt;
  nopt.eps = norm_eps_;
  nopt.gate_activation = gdn ? NormGateActivation::silu : NormGateActivation::sigmoid;
  const char* norm_name = gdn ? "norm.weight" : "o_norm.weight";
  RmsNormGrads ng = rms_norm_backward(d_normed.reshape({B, T, HV_, V_}), s.o, s.o_rstd, p(norm_name).w(), s.gate, nopt);
  p(norm_name).add_grad(ng.dweight);
  const Tensor d_gate = ng.dgate.reshape({B, T, HV_ * V_});
  Tensor dx;
  if (gdn) {
    dx = proj_back("in_proj_z.weight", d_gate, x);
  } else {
    dx = proj_back("g_proj.0.weight", proj_back("g_proj.1.weight", d_gate, s.gate_low, "g_proj.1.bias"), x);
  }
  // The recurrence, its input gradients in the dtypes of its inputs (the layer's activations, in x's dtype).
  Gdn2Grads g = gdn2_chunk_bwd(s.rec, rec_options(x), ng.dx, Tensor(), s.h, s.work);
  // Gates.
  auto sigmoid_back = [&](Tensor d, const Tensor& sig) {
    if (neg_eig_) scale_inplace(d, 2.0);
    return sigmoid_backward(d.reshape(sig.shape()), sig);
  };
  if (gdn) {
    add_inplace(g.db, g.dw);  // b and w are the same β
    proj_back("in_proj_b.weight", sigmoid_back(g.db, s.b_sig), x, nullptr, &dx);
    proj_back("in_proj_a.weight", g.dg, x, nullptr, &dx);
  } else {
    if (kind_ == LayerKind::kda) add_inplace(g.db, g.dw);
    if (kind_ != LayerKind::ssd) proj_back("b_proj.weight", sigmoid_back(g.db, s.b_sig), x, nullptr, &dx);
    if (kind_ != LayerKind::kda) {
      const Tensor dw = sigmoid_backward(g.dw.reshape(s.w_sig.shape()), s.w_sig);
      proj_back("w_proj.weight", dw, x, nullptr, &dx);
    }
    const Tensor df = g.dg.reshape({B, T, Hg_ * K_});
    proj_back("f_proj.0.weight", proj_back("f_proj.1.weight", df, s.f_low), x, nullptr, &dx);
  }
  p("A_log").add_grad(g.dA_log);
  p("dt_bias").add_grad(g.ddt_bias);
  // Short convs and input projections.
  if (gdn) {
    const Tensor dqkv = concat_last({g.dq.reshape({B, T, H_ * K_}), g.dk.reshape({B, T, H_ * K_}),
                                     g.dv.reshape({B, T, HV_ * V_})});
    proj_back("in_proj_qkv.weight", conv_back(0, "conv1d.weight", dqkv), x, nullptr, &dx);
  } else {
    proj_back("q_proj.weight", conv_back(0, "q_conv1d.weight", g.dq.reshape({B, T, H_ * K_})), x, nullptr, &dx);
    proj_back("k_proj.weight", conv_back(1, "k_conv1d.weight", g.dk.reshape({B, T, H_ * K_})), x, nullptr, &dx);
    proj_back("v_proj.weight", conv_back(2, "v_conv1d.weight", g.dv.reshape({B, T, HV_ * V_})), x, nullptr, &dx);
  }
  return dx;
}

}  // namespace gdn2
