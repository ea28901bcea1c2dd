// CUDA elementwise ops (elementwise.h): one map kernel, templated on the op and the storage types, reading and writing
// eight elements per thread with 16-byte accesses where every operand is 16-byte aligned; and one strided row-copy
// kernel for split/concat along the last dimension.
#include "cuda/elementwise.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "cuda/common.cuh"
#include "cuda/fast_math.cuh"
#include "cuda/stream.h"
#include "cuda/vec_io.cuh"

namespace gdn2::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 132 * 16;  // grid-stride loops: two waves of full occupancy on an H100/H200

unsigned blocks_for(int64_t work) {
  return static_cast<unsigned>(std::clamp<int64_t>((work + kThreads - 1) / kThreads, 1, kMaxBlocks));
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// y[r, j] = silu(gu[r, j]) · gu[r, F + j] for the packed [rows, 2F] gate | up.
template <class T>
__global__ void swiglu_packed_kernel(const T* gu, int64_t F, int64_t n, T* y) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = i / F, j = i - r * F;
    const float g = to_f32(gu[2 * r * F + j]), u = to_f32(gu[2 * r * F + F + j]);
    y[i] = from_f32<T>(g * __frcp_rn(1.f + __expf(-g)) * u);  // as SwigluOp
  }
}

// One block per row: the first index of the row's largest value, -1 when the row holds a NaN or an infinity. A thread
// reads 16-byte packs from the row's first 16-byte boundary on (the elements before it and after the last whole pack
// one by one); the candidates merge by (value, lower index), so the order in which a thread sees them does not matter.
constexpr int kArgmaxThreads = 1024;

__device__ __forceinline__ void argmax_merge(float& best, int64_t& at, float f, int64_t v) {
  if (f > best || (f == best && v < at)) best = f, at = v;
}

template <class T>
__global__ void __launch_bounds__(kArgmaxThreads) argmax_kernel(const T* x, int64_t V, int32_t* out) {
  constexpr int N = 16 / sizeof(T);
  const T* row = x + blockIdx.x * V;
  float best = -INFINITY;
  int64_t at = INT64_MAX;
  bool bad = false;
  auto see = [&](float f, int64_t v) {
    bad |= !isfinite(f);
    argmax_merge(best, at, f, v);
  };
  const uintptr_t mis = reinterpret_cast<uintptr_t>(row) % 16;
  const int64_t lead = static_cast<int64_t>((16 - mis) % 16 / sizeof(T));
  const int64_t head = mis % sizeof(T) != 0 || lead > V ? V : lead;
  const int64_t packs = (V - head) / N, tail = head + packs * N;
  for (int64_t v = threadIdx.x; v < head; v += blockDim.x) see(to_f32(row[v]), v);
#pragma unroll 4
  for (int64_t i = threadIdx.x; i < packs; i += blockDim.x) {
    float f[N];
    load_vec<T, N>(row + head + i * N, f);
#pragma unroll
    for (int e = 0; e < N; ++e) see(f[e], head + i * N + e);
  }
  for (int64_t v = tail + threadIdx.x; v < V; v += blockDim.x) see(to_f32(row[v]), v);
  // The block's merge: within each warp, then warp 0 over the warps' candidates.
  auto warp_merge = [&] {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
      const float f = __shfl_xor_sync(0xffffffffu, best, o);
      const int64_t v = __shfl_xor_sync(0xffffffffu, at, o);
      argmax_merge(best, at, f, v);
    }
    bad = __any_sync(0xffffffffu, bad);
  };
  warp_merge();
  __shared__ float sb[32];
  __shared__ int64_t sa[32];
  __shared__ bool sbad[32];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) sb[warp] = best, sa[warp] = at, sbad[warp] = bad;
  __syncthreads();
  if (warp != 0) return;
  const bool have = lane < static_cast<int>(blockDim.x / 32);
  best = have ? sb[lane] : -INFINITY;
  at = have ? sa[lane] : INT64_MAX;
  bad = have && sbad[lane];
  warp_merge();
  if (lane == 0) out[blockIdx.x] = bad ? -1 : static_cast<int32_t>(at);
}

// ---- the ops: (a, b, c) -> (y0, y1) in fp32; `inputs` and `outputs` say which are used ----

struct SigmoidOp {
  static constexpr int inputs = 1, outputs = 1;
  __device__ void operator()(float a, float, float, float& y, float&) const { y = sigmoid(a); }
};
struct SiluOp {
  static constexpr int inputs = 1, outputs = 1;
  __device__ void operator()(float a, float, float, float& y, float&) const { y = a * sigmoid(a); }
};
struct SigmoidBackwardOp {  // (dy, y)
  static constexpr int inputs = 2, outputs = 1;
  __device__ void operator()(float dy, float y, float, float& dx, float&) const { dx = dy * y * (1.f - y); }
};
struct SiluBackwardOp {  // (dy, x)
  static constexpr int inputs = 2, outputs = 1;
  __device__ void operator()(float dy, float x, float, float& dx, float&) const {
    const float s = sigmoid(x);
    dx = dy * s * (1.f + x * (1.f - s));
  }
};
struct SwigluOp {  // (gate, up)
  static constexpr int inputs = 2, outputs = 1;
  __device__ void operator()(float g, float u, float, float& h, float&) const { h = g * sigmoid(g) * u; }
};
struct SwigluGradOp {  // (dh, gate, up) -> (dgate, dup)
  static constexpr int inputs = 3, outputs = 2;
  __device__ void operator()(float dh, float g, float u, float& dg, float& du) const {
    const float s = sigmoid(g);
    dg = dh * u * s * (1.f + g * (1.f - s));
    du = dh * g * s;
  }
};
struct MulOp {
  static constexpr int inputs = 2, outputs = 1;
  __device__ void operator()(float a, float b, float, float& y, float&) const { y = a * b; }
};
struct AddOp {  // (x, y) -> x + y
  static constexpr int inputs = 2, outputs = 1;
  __device__ void operator()(float x, float y, float, float& r, float&) const { r = x + y; }
};
struct ScaleOp {
  static constexpr int inputs = 1, outputs = 1;
  float s;
  __device__ void operator()(float x, float, float, float& r, float&) const { r = x * s; }
};

// Operands of one map: input a and outputs y0, y1 of type A, inputs b and c of type B (B differs from A only when an
// F32 gradient adds a low-precision one). An output may be an input (in place): each element is read, then written,
// by one thread.
template <class A, class B>
struct MapOperands {
  const A* a = nullptr;
  const B* b = nullptr;
  const B* c = nullptr;
  A* y0 = nullptr;
  A* y1 = nullptr;
};

// Elements [0, n): with vec, packs of eight by 16-byte accesses and the last n % 8 one by one; else one by one.
template <class Op, class A, class B>
__global__ void map_kernel(const Op op, const MapOperands<A, B> p, int64_t n, bool vec) {
  const int64_t first = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  int64_t tail = 0;
  if (vec) {
    const int64_t packs = n / 8;
    for (int64_t k = first; k < packs; k += stride) {
      float a[8], b[8] = {}, c[8] = {}, y0[8], y1[8] = {};
      load_vec(p.a + 8 * k, a);
      if constexpr (Op::inputs >= 2) load_vec(p.b + 8 * k, b);
      if constexpr (Op::inputs >= 3) load_vec(p.c + 8 * k, c);
#pragma unroll
      for (int e = 0; e < 8; ++e) op(a[e], b[e], c[e], y0[e], y1[e]);
      store_vec(p.y0 + 8 * k, y0);
      if constexpr (Op::outputs == 2) store_vec(p.y1 + 8 * k, y1);
    }
    tail = packs * 8;
  }
  for (int64_t i = tail + first; i < n; i += stride) {
    float b = 0.f, c = 0.f, y0 = 0.f, y1 = 0.f;
    if constexpr (Op::inputs >= 2) b = to_f32(p.b[i]);
    if constexpr (Op::inputs >= 3) c = to_f32(p.c[i]);
    op(to_f32(p.a[i]), b, c, y0, y1);
    p.y0[i] = from_f32<A>(y0);
    if constexpr (Op::outputs == 2) p.y1[i] = from_f32<A>(y1);
  }
}

template <class Op, class A, class B>
void launch_map(const Op& op, const MapOperands<A, B>& p, int64_t n) {
  if (n == 0) return;
  const bool vec = aligned16(p.a) && aligned16(p.b) && aligned16(p.c) && aligned16(p.y0) && aligned16(p.y1);
  map_kernel<<<blocks_for(vec ? n / 8 + 1 : n), kThreads, 0, stream()>>>(op, p, n, vec);
  GDN2_CUDA_CHECK(cudaGetLastError());
}

// f(Type<T>{}) for the storage type T of dt (F32, BF16 or F16; DTypeError naming op otherwise).
template <class F>
void with_type(DType dt, const char* op, F&& f) {
  switch (dt) {
    case DType::f32: f(Type<float>{}); break;
    case DType::bf16: f(Type<__nv_bfloat16>{}); break;
    case DType::f16: f(Type<__half>{}); break;
    default: GDN2_THROW(DTypeError, op, ": on the GPU elementwise operands must be F32, BF16 or F16, got ", dtype_name(dt));
  }
}

template <class T>
const T* in(const Tensor& t) {
  return t.defined() ? static_cast<const T*>(t.raw()) : nullptr;
}
template <class T>
T* out(Tensor& t) {
  return static_cast<T*>(t.raw_mut());
}

// ---- strided row copies ----

// `rows` runs of `units` pieces of `unit` bytes (1, 2, 4, 8 or 16): run r from src + r·src_pitch to dst + r·dst_pitch.
struct RowCopy {
  const char* src;
  char* dst;
  int64_t src_pitch, dst_pitch, units;
  int unit;
};
constexpr int kMaxCopies = 16;  // copies per launch (kernel parameter space)
struct RowCopies {
  RowCopy c[kMaxCopies];
};

// Copy blockIdx.y of `copies`, its rows·units pieces spread over the x grid. Index: 32-bit when the piece count is
// below 2^31 (cheap division), else 64-bit.
template <class Index>
__global__ void row_copy_kernel(const __grid_constant__ RowCopies copies, int64_t rows) {
  const RowCopy& c = copies.c[blockIdx.y];
  const Index total = static_cast<Index>(rows * c.units), units = static_cast<Index>(c.units);
  for (Index i = static_cast<Index>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<Index>(gridDim.x) * blockDim.x) {
    const Index r = i / units, u = i - r * units;
    const char* s = c.src + static_cast<int64_t>(r) * c.src_pitch + static_cast<int64_t>(u) * c.unit;
    char* d = c.dst + static_cast<int64_t>(r) * c.dst_pitch + static_cast<int64_t>(u) * c.unit;
    switch (c.unit) {
      case 16: *reinterpret_cast<uint4*>(d) = *reinterpret_cast<const uint4*>(s); break;
      case 8: *reinterpret_cast<uint2*>(d) = *reinterpret_cast<const uint2*>(s); break;
      case 4: *reinterpret_cast<uint32_t*>(d) = *reinterpret_cast<const uint32_t*>(s); break;
      case 2: *reinterpret_cast<uint16_t*>(d) = *reinterpret_cast<const uint16_t*>(s); break;
      default: *d = *s;
    }
  }
}

// A copy of `width` bytes per row in the widest unit (up to 16 bytes) that divides every address and pitch.
RowCopy row_copy(const void* src, int64_t src_pitch, void* dst, int64_t dst_pitch, int64_t width) {
  const auto bits = reinterpret_cast<uintptr_t>(src) | reinterpret_cast<uintptr_t>(dst) |
                    static_cast<uintptr_t>(src_pitch) | static_cast<uintptr_t>(dst_pitch) |
                    static_cast<uintptr_t>(width) | uintptr_t{16};
  const int unit = static_cast<int>(bits & (~bits + 1));  // lowest set bit
  return {static_cast<const char*>(src), static_cast<char*>(dst), src_pitch, dst_pitch, width / unit, unit};
}

// Runs every non-empty copy over `rows` rows: one launch per kMaxCopies of them (one launch for the usual few).
void run_row_copies(const std::vector<RowCopy>& copies, int64_t rows) {
  if (rows == 0) return;
  RowCopies batch{};
  int count = 0;
  int64_t most = 0;
  auto flush = [&] {
    if (count == 0) return;
    const dim3 grid(blocks_for(most), static_cast<unsigned>(count));
    if (most < (int64_t{1} << 31))
      row_copy_kernel<uint32_t><<<grid, kThreads, 0, stream()>>>(batch, rows);
    else
      row_copy_kernel<uint64_t><<<grid, kThreads, 0, stream()>>>(batch, rows);
    GDN2_CUDA_CHECK(cudaGetLastError());
    count = 0;
    most = 0;
  };
  for (const RowCopy& c : copies) {
    if (c.units == 0) continue;
    batch.c[count++] = c;
    most = std::max(most, rows * c.units);
    if (count == kMaxCopies) flush();
  }
  flush();
}

// The number of rows of a [..., last] tensor (the product of the leading extents; 1 for a vector).
int64_t leading_rows(const Tensor& t) {
  int64_t r = 1;
  for (int64_t i = 0; i + 1 < t.dim(); ++i) r *= t.size(i);
  return r;
}

}  // namespace

Tensor elementwise(Elementwise op, const Tensor& a, const Tensor& b) {
  Tensor y = Tensor::empty(a.shape(), a.dtype(), Device::cuda);
  with_type(a.dtype(), "elementwise", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const MapOperands<T, T> p{in<T>(a), in<T>(b), nullptr, out<T>(y), nullptr};
    const int64_t n = a.numel();
    switch (op) {
      case Elementwise::sigmoid_forward: launch_map(SigmoidOp{}, p, n); break;
      case Elementwise::silu_forward: launch_map(SiluOp{}, p, n); break;
      case Elementwise::sigmoid_backward: launch_map(SigmoidBackwardOp{}, p, n); break;
      case Elementwise::silu_backward: launch_map(SiluBackwardOp{}, p, n); break;
      case Elementwise::swiglu_forward: launch_map(SwigluOp{}, p, n); break;
      case Elementwise::mul_forward: launch_map(MulOp{}, p, n); break;
    }
  });
  return y;
}

Tensor swiglu_packed(const Tensor& gate_up) {
  Shape s = gate_up.shape();
  const int64_t F = s.back() / 2;
  s.back() = F;
  Tensor y = Tensor::empty(s, gate_up.dtype(), Device::cuda);
  const int64_t n = y.numel();
  if (n == 0) return y;
  with_type(gate_up.dtype(), "swiglu_forward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    swiglu_packed_kernel<T><<<blocks_for(n), kThreads, 0, stream()>>>(static_cast<const T*>(gate_up.raw()), F, n,
                                                                      static_cast<T*>(y.raw_mut()));
    GDN2_CUDA_CHECK(cudaGetLastError());
  });
  return y;
}

void swiglu_grad(const Tensor& dh, const Tensor& gate, const Tensor& up, Tensor& dgate, Tensor& dup) {
  dgate = Tensor::empty(dh.shape(), dh.dtype(), Device::cuda);
  dup = Tensor::empty(dh.shape(), dh.dtype(), Device::cuda);
  with_type(dh.dtype(), "swiglu_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    launch_map(SwigluGradOp{}, MapOperands<T, T>{in<T>(dh), in<T>(gate), in<T>(up), out<T>(dgate), out<T>(dup)},
               dh.numel());
  });
}

void add_to(Tensor& x, const Tensor& y) {
  with_type(x.dtype(), "add_inplace", [&](auto xtag) {
    using A = typename decltype(xtag)::type;
    with_type(y.dtype(), "add_inplace", [&](auto ytag) {
      using B = typename decltype(ytag)::type;
      if constexpr (std::is_same_v<A, float> || std::is_same_v<A, B>)
        launch_map(AddOp{}, MapOperands<A, B>{in<A>(x), in<B>(y), nullptr, out<A>(x), nullptr}, x.numel());
      else
        GDN2_THROW(DTypeError, "add_inplace on the GPU: ", x.describe(), " += ", y.describe(),
                   " needs y in x's dtype, or x in F32");
    });
  });
}

void scale_by(Tensor& x, double s) {
  with_type(x.dtype(), "scale_inplace", [&](auto tag) {
    using T = typename decltype(tag)::type;
    launch_map(ScaleOp{static_cast<float>(s)}, MapOperands<T, T>{in<T>(x), nullptr, nullptr, out<T>(x), nullptr},
               x.numel());
  });
}

Tensor argmax_rows(const Tensor& x) {
  const int64_t rows = x.size(0), V = x.size(1);
  Tensor out = Tensor::empty({rows}, DType::i32, Device::cuda);
  if (rows == 0) return out;
  with_type(x.dtype(), "argmax_rows", [&](auto tag) {
    using T = typename decltype(tag)::type;
    argmax_kernel<T><<<static_cast<unsigned>(rows), kArgmaxThreads, 0, stream()>>>(static_cast<const T*>(x.raw()), V,
                                                                                   static_cast<int32_t*>(out.raw_mut()));
  });
  GDN2_CUDA_CHECK(cudaGetLastError());
  return out;
}

std::vector<Tensor> split_last(const Tensor& x, const std::vector<int64_t>& sizes) {
  const int64_t e = static_cast<int64_t>(dtype_size(x.dtype())), D = x.size(-1), rows = leading_rows(x);
  std::vector<Tensor> parts;
  std::vector<RowCopy> copies;
  int64_t off = 0;
  for (int64_t s : sizes) {
    Shape shape = x.shape();
    shape.back() = s;
    Tensor p = Tensor::empty(shape, x.dtype(), Device::cuda);
    copies.push_back(row_copy(static_cast<const char*>(x.raw()) + off * e, D * e, p.raw_mut(), s * e, s * e));
    parts.push_back(p);
    off += s;
  }
  run_row_copies(copies, rows);
  return parts;
}

Tensor concat_last(const std::vector<Tensor>& parts) {
  const Tensor& first = parts.front();
  const int64_t e = static_cast<int64_t>(dtype_size(first.dtype())), rows = leading_rows(first);
  int64_t D = 0;
  for (const Tensor& p : parts) D += p.size(-1);
  Shape shape = first.shape();
  shape.back() = D;
  Tensor y = Tensor::empty(shape, first.dtype(), Device::cuda);
  std::vector<RowCopy> copies;
  int64_t off = 0;
  for (const Tensor& p : parts) {
    const int64_t s = p.size(-1);
    copies.push_back(row_copy(p.raw(), s * e, static_cast<char*>(y.raw_mut()) + off * e, D * e, s * e));
    off += s;
  }
  run_row_copies(copies, rows);
  return y;
}

}  // namespace gdn2::cuda
