// Public decode-attention ops on KV caches of fixed capacity: check the shape contract of
// include/gdn2/ops/attention.h (attention_decode, kv_cache_write, attention_decode_inputs), then dispatch.
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "core/env_switch.h"
#include "cpu/attention.h"
#include "gdn2/ops/attention.h"
#include "gdn2/ops/dense.h"
#include "ops/op_args.h"
#ifdef GDN2_WITH_CUDA
#include "cuda/attention.h"
#endif

namespace gdn2 {

namespace {

// GDN2_FUSED_DECODE_INPUTS=0 runs attention_decode_inputs on the GPU as the ops in turn (twelve launches instead of
// one, ten without rotation: five row copies of the splits, the norms, the rotations, the cache writes, the sigmoid),
// to compare the two; read once.
bool fused_decode_inputs() {
  static const bool on = env_switch_on("GDN2_FUSED_DECODE_INPUTS");
  return on;
}

// lengths or positions: I32 [N].
void check_index_vector(const Tensor& t, int64_t N, const char* op, const char* name) {
  GDN2_CHECK(t.defined(), ValueError, op, ": ", name, " is required");
  GDN2_CHECK(t.dtype() == DType::i32, DTypeError, op, ": ", name, " must be I32, got ", t.describe());
  GDN2_CHECK(t.shape() == Shape{N}, ShapeError, op, ": ", name, " must be [", N, "], got ", t.describe());
}

// kv_cache_write's contract for rows [N, Hkv, D] of dtype dt on device dev: a writable cache [S, L, Hkv, D] with
// S >= N of that dtype and device, and positions I32 [N] on it.
void check_cache_write(const Tensor& cache, int64_t N, int64_t Hkv, int64_t D, DType dt, Device dev,
                       const Tensor& positions, const char* op) {
  GDN2_CHECK(cache.defined() && cache.dim() == 4, ShapeError, op, ": cache must be [S, L, Hkv, D], got ",
             cache.describe());
  GDN2_CHECK(!cache.read_only(), ValueError, op, ": cache ", cache.describe(), " is a read-only view");
  GDN2_CHECK(N <= cache.size(0) && Hkv == cache.size(2) && D == cache.size(3), ShapeError, op, ": rows [", N, ", ",
             Hkv, ", ", D, "] do not fit the cache ", cache.describe(), " (N <= S, one Hkv and D)");
  GDN2_CHECK(dt == cache.dtype(), DTypeError, op, ": rows of ", dtype_name(dt), " for the cache ", cache.describe(),
             " (one dtype)");
  GDN2_CHECK(dev == cache.device(), ShapeError, op, ": the rows and the cache ", cache.describe(),
             " are on different devices");
  check_index_vector(positions, N, op, "positions");
  GDN2_CHECK(positions.device() == cache.device(), ShapeError, op, ": positions ", positions.describe(),
             " must be on the cache's device");
}

// Host values of an I32 vector, each in [lo, hi] (ValueError).
std::vector<int64_t> host_values(const Tensor& t, int64_t lo, int64_t hi, const char* op, const char* name) {
  std::vector<int64_t> v(static_cast<size_t>(t.numel()));
  for (int64_t i = 0; i < t.numel(); ++i) {
    v[static_cast<size_t>(i)] = t.data<int32_t>()[i];
    GDN2_CHECK(v[static_cast<size_t>(i)] >= lo && v[static_cast<size_t>(i)] <= hi, ValueError, op, ": ", name, "[",
               i, "] = ", v[static_cast<size_t>(i)], " outside [", lo, ", ", hi, "]");
  }
  return v;
}

}  // namespace

Tensor attention_decode(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache, const Tensor& lengths,
                        const AttentionOptions& options, const Tensor& gate) {
  const char* op = "attention_decode";
  for (const auto& [t, name] : {std::pair{&q, "q"}, {&k_cache, "k_cache"}, {&v_cache, "v_cache"}}) {
    GDN2_CHECK(t->defined(), ValueError, op, ": ", name, " is required");
    op_args::check_float(*t, op, name);
  }
  GDN2_CHECK(q.dim() == 3, ShapeError, op, ": q must be [N, Hq, D], got ", q.describe());
  GDN2_CHECK(k_cache.dim() == 4, ShapeError, op, ": k_cache must be [S, L, Hkv, D], got ", k_cache.describe());
  GDN2_CHECK(v_cache.shape() == k_cache.shape(), ShapeError, op, ": v_cache must be like k_cache ",
             k_cache.describe(), ", got ", v_cache.describe());
  const int64_t N = q.size(0), Hq = q.size(1), D = q.size(2), S = k_cache.size(0), L = k_cache.size(1),
                Hkv = k_cache.size(2);
  GDN2_CHECK(k_cache.size(3) == D && Hkv >= 1 && Hq % Hkv == 0 && N <= S && L >= 1, ShapeError, op, ": q ",
             q.describe(), " does not fit the caches ", k_cache.describe(), " (N <= S, Hq % Hkv == 0, one D)");
  GDN2_CHECK(std::isfinite(options.scale) && options.scale >= 0, ValueError, op, ": scale must be finite and >= 0");
  GDN2_CHECK(options.window >= 0, ValueError, op, ": window must be >= 0, got ", options.window);
  check_index_vector(lengths, N, op, "lengths");
  if (gate.defined()) {
    GDN2_CHECK(gate.shape() == q.shape(), ShapeError, op, ": gate must be like q ", q.describe(), ", got ",
               gate.describe());
    GDN2_CHECK(gate.dtype() == q.dtype(), DTypeError, op, ": gate ", gate.describe(), " must have q's dtype (",
               q.describe(), ")");
    GDN2_CHECK(gate.device() == q.device(), ShapeError, op, ": gate ", gate.describe(), " and q ", q.describe(),
               " are on different devices");
  }
  const double scale = options.scale > 0 ? options.scale : 1.0 / std::sqrt(static_cast<double>(D));
  if (op_args::on_cuda(q, {&lengths}, {&k_cache, &v_cache}, {}, op)) {
#ifdef GDN2_WITH_CUDA
    GDN2_CHECK(D <= cuda::kAttentionMaxHeadDim, UnsupportedError, op, ": head dim ", D, " above ",
               cuda::kAttentionMaxHeadDim, " on the GPU");
    return cuda::attention_decode(q, k_cache, v_cache, lengths, scale, options.window, gate);
#endif
  }
  const std::vector<int64_t> len = host_values(lengths, 1, L, op, "lengths");
  const DType dt = op_args::compute_dtype(q);
  const Tensor o = cpu::attention_decode(op_args::to_dtype(q, dt), op_args::to_dtype(k_cache, dt),
                                         op_args::to_dtype(v_cache, dt), len, scale, options.window);
  return gate.defined() ? mul_forward(o, op_args::to_dtype(gate, dt)) : o;
}

void kv_cache_write(Tensor& cache, const Tensor& x, const Tensor& positions) {
  const char* op = "kv_cache_write";
  GDN2_CHECK(x.defined() && x.dim() == 3, ShapeError, op, ": x must be [N, Hkv, D], got ",
             x.defined() ? x.describe() : std::string("an undefined tensor"));
  check_cache_write(cache, x.size(0), x.size(1), x.size(2), x.dtype(), x.device(), positions, op);
  const int64_t N = x.size(0), L = cache.size(1);
  if (!cache.is_cpu()) {
#ifdef GDN2_WITH_CUDA
    cuda::kv_cache_write(cache, x, positions);
    return;
#endif
  }
  const std::vector<int64_t> pos = host_values(positions, 0, L - 1, op, "positions");
  const size_t row = static_cast<size_t>(x.size(1) * x.size(2)) * dtype_size(x.dtype());
  auto* dst = static_cast<std::byte*>(cache.raw_mut());
  const auto* src = static_cast<const std::byte*>(x.raw());
  for (int64_t n = 0; n < N; ++n)
    std::memcpy(dst + (n * L + pos[static_cast<size_t>(n)]) * row, src + n * row, row);
}

AttentionDecodeInputs attention_decode_inputs(const Tensor& qkv, int64_t Hq, int64_t Hkv, const Tensor& q_weight,
                                              const Tensor& k_weight, const RmsNormOptions& norm,
                                              const std::optional<RopeOptions>& rope, Tensor& k_cache,
                                              Tensor& v_cache, const Tensor& positions) {
  const char* op = "attention_decode_inputs";
  GDN2_CHECK(qkv.defined() && qkv.dim() == 2, ShapeError, op, ": qkv must be [N, (2 Hq + 2 Hkv) D], got ",
             qkv.defined() ? qkv.describe() : std::string("an undefined tensor"));
  op_args::check_float(qkv, op, "qkv");
  GDN2_CHECK(Hq >= 1 && Hkv >= 1 && Hq % Hkv == 0, ValueError, op, ": heads Hq ", Hq, " and Hkv ", Hkv,
             " must be >= 1 with Hq % Hkv == 0");
  const int64_t N = qkv.size(0), heads = 2 * Hq + 2 * Hkv;
  GDN2_CHECK(qkv.size(1) % heads == 0 && qkv.size(1) >= heads, ShapeError, op, ": qkv ", qkv.describe(),
             " is not [N, (2 Hq + 2 Hkv) D] for Hq ", Hq, ", Hkv ", Hkv);
  const int64_t D = qkv.size(1) / heads;
  GDN2_CHECK(k_cache.defined() && v_cache.defined() && v_cache.shape() == k_cache.shape(), ShapeError, op,
             ": the caches must be defined and alike, got ", k_cache.describe(), " and ", v_cache.describe());
  GDN2_CHECK(k_cache.device() == qkv.device(), ShapeError, op, ": qkv and the caches must be on one device");
  for (const Tensor* w : {&q_weight, &k_weight})
    if (w->defined()) {
      GDN2_CHECK(w->shape() == Shape{D}, ShapeError, op, ": a norm weight must be [", D, "], got ", w->describe());
      GDN2_CHECK(w->device() == qkv.device(), ShapeError, op, ": the norm weights must be on qkv's device");
    }
  const int64_t rd = rope ? (rope->rotary_dim == 0 ? D : rope->rotary_dim) : 0;
  if (rope)
    GDN2_CHECK(std::isfinite(rope->theta) && rope->theta > 0 && rd >= 2 && rd <= D && rd % 2 == 0, ValueError, op,
               ": RoPE needs theta > 0 and an even rotary_dim in [2, ", D, "], got theta ", rope->theta,
               ", rotary_dim ", rope->rotary_dim);
  if (qkv.is_cpu() || N == 0 || !fused_decode_inputs()) {
    // The ops in turn, each result in qkv's dtype as the GPU stores it (the caches' checks are kv_cache_write's).
    const DType dt = qkv.dtype();
    auto as_dt = [dt](const Tensor& t) { return t.dtype() == dt ? t : t.to(dt); };
    const std::vector<Tensor> parts = split_last(qkv, {Hq * 2 * D, Hkv * D, Hkv * D});
    const std::vector<Tensor> qg = split_last(parts[0].reshape({N, Hq, 2 * D}), {D, D});
    Tensor qn = as_dt(rms_norm_forward(qg[0], q_weight, Tensor(), norm).y);
    Tensor kn = as_dt(rms_norm_forward(parts[1].reshape({N, Hkv, D}), k_weight, Tensor(), norm).y);
    if (rope) {
      const Tensor pos = positions.reshape({N, 1});
      qn = as_dt(rope_forward(qn.reshape({N, 1, Hq, D}), pos, *rope)).reshape({N, Hq, D});
      kn = as_dt(rope_forward(kn.reshape({N, 1, Hkv, D}), pos, *rope)).reshape({N, Hkv, D});
    }
    kv_cache_write(k_cache, kn, positions);
    kv_cache_write(v_cache, parts[2].reshape({N, Hkv, D}), positions);
    // The CPU's sigmoid takes F32 or F64: a BF16 or F16 gate goes through F32 and back.
    const Tensor g = qkv.is_cpu() ? op_args::to_dtype(qg[1], op_args::compute_dtype(qg[1])) : qg[1];
    return {qn, as_dt(sigmoid_forward(g))};
  }
  check_cache_write(k_cache, N, Hkv, D, qkv.dtype(), qkv.device(), positions, op);
  check_cache_write(v_cache, N, Hkv, D, qkv.dtype(), qkv.device(), positions, op);
  GDN2_CHECK(!q_weight.defined() || !k_weight.defined() || q_weight.dtype() == k_weight.dtype(), DTypeError, op,
             ": the norm weights must share a dtype, got ", q_weight.describe(), " and ", k_weight.describe());
#ifdef GDN2_WITH_CUDA
  return cuda::attention_decode_inputs(qkv, Hq, Hkv, q_weight, k_weight, norm.eps, norm.zero_centred,
                                       rope ? rope->theta : 0.0, rd, k_cache, v_cache, positions);
#else
  GDN2_THROW(UnsupportedError, op, ": this build has no CUDA backend");
#endif
}

}  // namespace gdn2
