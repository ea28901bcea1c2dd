// Public decode-attention ops on KV caches of fixed capacity: check the shape contract of
// include/gdn2/ops/attention.h (attention_decode, kv_cache_write), then dispatch.
#include <cmath>
#include <cstring>
#include <vector>

#include "cpu/attention.h"
#include "gdn2/ops/attention.h"
#include "ops/op_args.h"
#ifdef GDN2_WITH_CUDA
#include "cuda/attention.h"
#endif

namespace gdn2 {

namespace {

// lengths or positions: I32 [N].
void check_index_vector(const Tensor& t, int64_t N, const char* op, const char* name) {
  GDN2_CHECK(t.defined(), ValueError, op, ": ", name, " is required");
  GDN2_CHECK(t.dtype() == DType::i32, DTypeError, op, ": ", name, " must be I32, got ", t.describe());
  GDN2_CHECK(t.shape() == Shape{N}, ShapeError, op, ": ", name, " must be [", N, "], got ", t.describe());
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
                        const AttentionOptions& options) {
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
  const double scale = options.scale > 0 ? options.scale : 1.0 / std::sqrt(static_cast<double>(D));
  if (op_args::on_cuda(q, {&lengths}, {&k_cache, &v_cache}, {}, op)) {
#ifdef GDN2_WITH_CUDA
    GDN2_CHECK(D <= cuda::kAttentionMaxHeadDim, UnsupportedError, op, ": head dim ", D, " above ",
               cuda::kAttentionMaxHeadDim, " on the GPU");
    return cuda::attention_decode(q, k_cache, v_cache, lengths, scale, options.window);
#endif
  }
  const std::vector<int64_t> len = host_values(lengths, 1, L, op, "lengths");
  const DType dt = op_args::compute_dtype(q);
  return cpu::attention_decode(op_args::to_dtype(q, dt), op_args::to_dtype(k_cache, dt),
                               op_args::to_dtype(v_cache, dt), len, scale, options.window);
}

void kv_cache_write(Tensor& cache, const Tensor& x, const Tensor& positions) {
  const char* op = "kv_cache_write";
  GDN2_CHECK(cache.defined() && cache.dim() == 4, ShapeError, op, ": cache must be [S, L, Hkv, D], got ",
             cache.describe());
  GDN2_CHECK(!cache.read_only(), ValueError, op, ": cache ", cache.describe(), " is a read-only view");
  GDN2_CHECK(x.defined() && x.dim() == 3 && x.size(0) <= cache.size(0) && x.size(1) == cache.size(2) &&
                 x.size(2) == cache.size(3),
             ShapeError, op, ": x must be [N, Hkv, D] with N <= S for the cache ", cache.describe(), ", got ",
             x.describe());
  GDN2_CHECK(x.dtype() == cache.dtype(), DTypeError, op, ": x ", x.describe(), " must have the cache's dtype ",
             dtype_name(cache.dtype()));
  GDN2_CHECK(x.device() == cache.device(), ShapeError, op, ": x ", x.describe(), " and the cache ", cache.describe(),
             " are on different devices");
  const int64_t N = x.size(0), L = cache.size(1);
  check_index_vector(positions, N, op, "positions");
  GDN2_CHECK(positions.device() == cache.device(), ShapeError, op, ": positions ", positions.describe(),
             " must be on the cache's device");
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

}  // namespace gdn2
