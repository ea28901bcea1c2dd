// CUDA row norms (L2 and gated RMSNorm, forward and backward): a group of G threads per row (G a power of two, about
// D / 8, at most 1024), each thread holding K pieces of eight consecutive columns in registers with 16-byte loads and
// stores where the row allows; several rows per block when G is small. The element type is a template parameter. The
// backward walks a block's rows with each row's pieces fetched one step ahead, adds the weight-gradient terms per
// block in a fixed order and then sums the blocks' partial rows in a fixed order (sum_row_parts).
#include "cuda/norm.h"
#include "cuda/reduce.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "cuda/common.cuh"
#include "cuda/stream.h"
#include "cuda/elem.h"
#include "cuda/fast_math.cuh"
#include "cuda/gdn2/load.cuh"
#include "cuda/vec_io.cuh"

namespace gdn2::cuda {

namespace {

constexpr int kPiece = 8;               // consecutive columns a thread loads at once
constexpr int kBlock = 256;             // threads per block unless one row group is larger
constexpr int kMaxGroup = 1024;         // threads per row at most
constexpr int64_t kGradBlocks = 1024;   // row blocks of the backward at most (a function of the shape only)

// One norm call's rows. The backward reads `x` as the forward's x (RMSNorm) or as its output y (L2 norm).
struct NormRows {
  const void* x;
  const void* gate;    // null: no gate
  const void* weight;  // null: no weight (1)
  ElemType t, wt;      // x, gate, dy, outputs; weight
  int64_t rows;
  int D, G;
  bool rms;           // RMSNorm (mean of squares), else L2 norm (sum of squares)
  bool zero_centred;  // weight applied as 1 + weight
  bool silu;          // gate activation silu, else sigmoid
  bool vec;           // 16-byte loads and stores (D % 8 == 0 and every pointer 16-byte aligned)
};

// Threads per row (G), pieces per thread (K), threads per block and rows per block (R) for rows of D columns.
struct Layout {
  int G, K, threads, R;
};

Layout layout_for(int64_t D, const char* op) {
  GDN2_CHECK(D <= kNormMaxD, UnsupportedError, op, " on CUDA: rows of at most ", kNormMaxD, " elements, got D=", D);
  const int64_t pieces = (D + kPiece - 1) / kPiece;
  int G = 1;
  while (G < pieces && G < kMaxGroup) G *= 2;
  const int threads = std::max(G, kBlock);
  return {G, static_cast<int>((pieces + G - 1) / G), threads, threads / G};
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// act(g) and act'(g) of the gate.
__device__ __forceinline__ void gate_act(bool silu, float g, float& act, float& dact) {
  const float s = sigmoid_approx(g);
  if (silu) {
    act = g * s;
    dact = s * (1.f + g * (1.f - s));
  } else {
    act = s;
    dact = s * (1.f - s);
  }
}

// The weight factor of columns col .. col + 7 (1 without a weight, 1 + w when zero-centred).
__device__ __forceinline__ void load_weight(float (&w)[kPiece], const NormRows& a, int col) {
  if (a.weight == nullptr) {
#pragma unroll
    for (int e = 0; e < kPiece; ++e) w[e] = 1.f;
    return;
  }
  load_elems<kPiece>(w, a.weight, a.wt, col, a.D - col, a.vec);
  if (a.zero_centred)
#pragma unroll
    for (int e = 0; e < kPiece; ++e) w[e] += 1.f;
}

// The sum of v over the G threads of this thread's row group, the same value in each of them (a butterfly adds the
// same two numbers on both sides). For G > 32 the group's warps add their sums in order through `red`; every thread of
// the block must then call it.
__device__ __forceinline__ float group_sum(float v, int G, float* red) {
  const int width = G < 32 ? G : 32;
  for (int o = width / 2; o > 0; o /= 2) v += __shfl_xor_sync(0xffffffffu, v, o);
  if (G <= 32) return v;
  const int warp = static_cast<int>(threadIdx.x) / 32, per = G / 32, first = warp / per * per;
  __syncthreads();  // red is free again (read by the previous call)
  if ((threadIdx.x & 31) == 0) red[warp] = v;
  __syncthreads();
  float s = 0.f;
  for (int i = 0; i < per; ++i) s += red[first + i];
  return s;
}

// One piece: the eight elements of T from p + at, zeros from `valid` on; one access when vec and all are valid.
// Returned unconverted, so that a piece can be fetched one row ahead.
template <class T>
__device__ __forceinline__ Pack<T, kPiece> fetch_piece(const T* p, int64_t at, int valid, bool vec) {
  if (vec && valid >= kPiece) return load_pack<T, kPiece>(p + at);
  float v[kPiece];
#pragma unroll
  for (int e = 0; e < kPiece; ++e) v[e] = e < valid ? to_f32(p[at + e]) : 0.f;
  return pack<T, kPiece>(v);
}

// v[0 .. valid) to p + at: one access when vec and all eight are valid.
template <class T>
__device__ __forceinline__ void put_piece(T* p, int64_t at, const float (&v)[kPiece], int valid, bool vec) {
  if (vec && valid >= kPiece) {
    store_vec(p + at, v);
    return;
  }
#pragma unroll
  for (int e = 0; e < kPiece; ++e)
    if (e < valid) p[at + e] = from_f32<T>(v[e]);
}

// y = x · rstd (· w · act(gate)), rstd = 1 / sqrt(Σ x² (/ D) + eps): one row per group of G threads. T: the element
// type of x, gate and y; K: pieces a thread; THREADS: the block's threads at most.
template <class T, int K, int THREADS>
__global__ void __launch_bounds__(THREADS) norm_forward_kernel(NormRows a, float eps, T* y, float* rstd) {
  __shared__ float red[THREADS / 32];
  const T* x = static_cast<const T*>(a.x);
  const T* gate = static_cast<const T*>(a.gate);
  const int lane = static_cast<int>(threadIdx.x) & (a.G - 1);
  const int64_t row = static_cast<int64_t>(blockIdx.x) * (blockDim.x / a.G) + threadIdx.x / a.G;
  const bool ok = row < a.rows;
  const int64_t base = ok ? row * a.D : 0;
  // The row and its gate are loaded before the reduction, so the row costs one memory round trip.
  Pack<T, kPiece> xp[K], gp[K];
#pragma unroll
  for (int k = 0; k < K; ++k) {
    const int col = (lane + k * a.G) * kPiece, valid = ok ? a.D - col : 0;
    xp[k] = fetch_piece(x, base + col, valid, a.vec);
    if (gate != nullptr) gp[k] = fetch_piece(gate, base + col, valid, a.vec);
  }
  float v[K][kPiece], w[K][kPiece];
  float ss = 0.f;
#pragma unroll
  for (int k = 0; k < K; ++k) {
    load_weight(w[k], a, (lane + k * a.G) * kPiece);  // zeros (or ones) past D
    unpack(xp[k], v[k]);
#pragma unroll
    for (int e = 0; e < kPiece; ++e) ss += v[k][e] * v[k][e];
  }
  ss = group_sum(ss, a.G, red);
  const float r = 1.f / sqrtf((a.rms ? ss / static_cast<float>(a.D) : ss) + eps);
  if (!ok) return;
  if (lane == 0) rstd[row] = r;
#pragma unroll
  for (int k = 0; k < K; ++k) {
    const int col = (lane + k * a.G) * kPiece;
    if (col >= a.D) break;
    float o[kPiece], g[kPiece];
    if (gate != nullptr) unpack(gp[k], g);
#pragma unroll
    for (int e = 0; e < kPiece; ++e) {
      float val = v[k][e] * r * w[k][e];
      if (gate != nullptr) {
        float act, dact;
        gate_act(a.silu, g[e], act, dact);
        val *= act;
      }
      o[e] = val;
    }
    put_piece(y, base + col, o, a.D - col, a.vec);
  }
}

// The backward's blocks of kBlock threads with 16-bit elements fetch each row one step ahead (three blocks an SM);
// others (fp32, or rows above 2048 elements: one block an SM, 64 registers a thread) fetch a row and the weights when
// its step comes.
template <class T, int THREADS>
constexpr bool kAhead = THREADS <= kBlock && sizeof(T) == 2;
template <int THREADS>
constexpr int kBlocksPerSm = THREADS <= kBlock ? 3 : 1;

// With n = x · rstd (L2: n = y, read directly), a = act(gate), dn = dy · w · a:
//   dx = rstd · (dn − n · Σ dn n (/ D)),  dgate = dy · n · w · act'(gate),  dweight += dy · n · a.
// Block b takes rows [b · rows_per_block, ...), R rows at a time (with kAhead, each row's pieces are fetched one step
// ahead, in flight during the step before). With `part`, it writes its weight-gradient partial row part[b, D]: each
// thread's sum over its rows, then the block's R row slots added in order.
template <class T, int K, int THREADS>
__global__ void __launch_bounds__(THREADS, kBlocksPerSm<THREADS>)
    norm_backward_kernel(NormRows a, const T* dy, const float* rstd, int64_t rows_per_block, T* dx, T* dgate,
                         float* part, const T* dres) {
  __shared__ float red[THREADS / 32];
  __shared__ float slots[kBlock * kPiece];  // the R row slots' partial rows (only when R > 1, then K == 1)
  const T* x = static_cast<const T*>(a.x);
  const T* gate = static_cast<const T*>(a.gate);
  const int G = a.G, R = static_cast<int>(blockDim.x) / G;
  const int lane = static_cast<int>(threadIdx.x) & (G - 1), slot = static_cast<int>(threadIdx.x) / G;
  const int64_t row0 = static_cast<int64_t>(blockIdx.x) * rows_per_block;
  const int64_t row_end = row0 + rows_per_block < a.rows ? row0 + rows_per_block : a.rows;
  float w[K][kPiece], acc[K][kPiece] = {};
  auto fetch_weight = [&] {
#pragma unroll
    for (int k = 0; k < K; ++k) load_weight(w[k], a, (lane + k * G) * kPiece);  // zeros (or ones) past D
  };
  if (kAhead<T, THREADS>) fetch_weight();
  // The next row's pieces (x, dy, gate, dres) and rstd.
  Pack<T, kPiece> xp[K], dp[K], gp[K], rp[K];
  float r_next = 0.f;
  auto fetch = [&](int64_t row) {
    const bool ok = row < row_end;
    const int64_t base = ok ? row * a.D : 0;
    r_next = ok ? rstd[row] : 0.f;
#pragma unroll
    for (int k = 0; k < K; ++k) {
      const int col = (lane + k * G) * kPiece, valid = ok ? a.D - col : 0;
      xp[k] = fetch_piece(x, base + col, valid, a.vec);
      dp[k] = fetch_piece(dy, base + col, valid, a.vec);
      if (gate != nullptr) gp[k] = fetch_piece(gate, base + col, valid, a.vec);
      rp[k] = dres != nullptr ? fetch_piece(dres, base + col, valid, a.vec) : Pack<T, kPiece>{};
    }
  };
  if (kAhead<T, THREADS>) fetch(row0 + slot);
  for (int64_t it = row0; it < row_end; it += R) {  // the same trip count in every thread of the block
    const int64_t row = it + slot;
    const bool ok = row < row_end;
    const int64_t base = ok ? row * a.D : 0;
    if (!kAhead<T, THREADS>) fetch(row), fetch_weight();
    const float r = r_next;
    // This row's elementwise terms and its gate gradient (which needs no row sum), before the next row is fetched.
    float n[K][kPiece], dn[K][kPiece], dot = 0.f;
    Pack<T, kPiece> res[K];
#pragma unroll
    for (int k = 0; k < K; ++k) {
      const int col = (lane + k * G) * kPiece;
      float dyv[kPiece], g[kPiece];
      unpack(xp[k], n[k]);
      unpack(dp[k], dyv);
      if (gate != nullptr) unpack(gp[k], g);
      res[k] = rp[k];
#pragma unroll
      for (int e = 0; e < kPiece; ++e) {
        if (a.rms) n[k][e] *= r;
        float act = 1.f, dact = 0.f;
        if (gate != nullptr) gate_act(a.silu, g[e], act, dact);
        const float d = dyv[e];
        if (a.weight != nullptr) acc[k][e] += d * n[k][e] * act;
        g[e] = d * n[k][e] * w[k][e] * dact;  // dgate
        dn[k][e] = d * w[k][e] * act;
        dot += dn[k][e] * n[k][e];
      }
      if (ok && dgate != nullptr && col < a.D) put_piece(dgate, base + col, g, a.D - col, a.vec);
    }
    if (kAhead<T, THREADS> && it + R < row_end) fetch(row + R);
    dot = group_sum(dot, G, red);
    if (a.rms) dot /= static_cast<float>(a.D);
    if (!ok) continue;
#pragma unroll
    for (int k = 0; k < K; ++k) {
      const int col = (lane + k * G) * kPiece;
      if (col >= a.D) break;
      float o[kPiece], rv[kPiece] = {};
      if (dres != nullptr) unpack(res[k], rv);
#pragma unroll
      for (int e = 0; e < kPiece; ++e) o[e] = r * (dn[k][e] - n[k][e] * dot) + rv[e];
      put_piece(dx, base + col, o, a.D - col, a.vec);
    }
  }
  if (part == nullptr) return;
  float* out = part + static_cast<int64_t>(blockIdx.x) * a.D;
  if (R == 1) {
#pragma unroll
    for (int k = 0; k < K; ++k) {
      const int col = (lane + k * G) * kPiece;
#pragma unroll
      for (int e = 0; e < kPiece; ++e)
        if (col + e < a.D) out[col + e] = acc[k][e];
    }
    return;
  }
  if constexpr (K == 1) {  // R > 1 only when G < kBlock, so one piece per thread
#pragma unroll
    for (int e = 0; e < kPiece; ++e) slots[threadIdx.x * kPiece + e] = acc[0][e];
    __syncthreads();
    // Column c is element c % 8 of lane c / 8's piece: slots[s · G · 8 + c] in row slot s.
    for (int c = threadIdx.x; c < a.D; c += blockDim.x) {
      float s = 0.f;
      for (int q = 0; q < R; ++q) s += slots[q * G * kPiece + c];
      out[c] = s;
    }
  }
}

// Calls f(Type<T>{}, K, THREADS) (integral constants) for the element type of x and a layout: blocks of kBlock threads
// take one piece a thread; larger row groups (up to kMaxGroup threads) one or two.
template <class F>
void with_norm_kernel(ElemType t, const Layout& l, F&& f) {
  using std::integral_constant;
  auto shape = [&](auto tag) {
    if (l.threads <= kBlock)
      f(tag, integral_constant<int, 1>{}, integral_constant<int, kBlock>{});
    else if (l.K == 1)
      f(tag, integral_constant<int, 1>{}, integral_constant<int, kMaxGroup>{});
    else
      f(tag, integral_constant<int, 2>{}, integral_constant<int, kMaxGroup>{});
  };
  if (t == ElemType::bf16)
    shape(Type<__nv_bfloat16>{});
  else if (t == ElemType::f16)
    shape(Type<__half>{});
  else
    shape(Type<float>{});
}

NormRows norm_rows(const Tensor& x, const Tensor& weight, const Tensor& gate, const RmsNormOptions* o, int64_t rows,
                   int64_t D, const Layout& l, const char* op) {
  NormRows a{};
  a.x = x.raw();
  a.gate = gate.defined() ? gate.raw() : nullptr;
  a.weight = weight.defined() ? weight.raw() : nullptr;
  a.t = elem_type(x, op, "x");
  a.wt = weight.defined() ? elem_type(weight, op, "weight") : ElemType::f32;
  a.rows = rows;
  a.D = static_cast<int>(D);
  a.G = l.G;
  a.rms = o != nullptr;
  a.zero_centred = o != nullptr && o->zero_centred;
  a.silu = o != nullptr && o->gate_activation == NormGateActivation::silu;
  a.vec = D % kPiece == 0 && aligned16(a.x) && aligned16(a.gate) && aligned16(a.weight);
  return a;
}

void launch_forward(NormRows a, const Layout& l, double eps, Tensor& y, Tensor& rstd) {
  if (a.rows == 0) return;
  a.vec = a.vec && aligned16(y.raw());
  const int64_t blocks = (a.rows + l.R - 1) / l.R;
  GDN2_CHECK(blocks < (int64_t{1} << 31), UnsupportedError, "norm on CUDA: ", a.rows, " rows");
  with_norm_kernel(a.t, l, [&](auto tag, auto k, auto threads) {
    using T = typename decltype(tag)::type;
    norm_forward_kernel<T, k, threads><<<static_cast<unsigned>(blocks), l.threads, 0, stream()>>>(
        a, static_cast<float>(eps), static_cast<T*>(y.raw_mut()), static_cast<float*>(rstd.raw_mut()));
  });
  GDN2_CUDA_CHECK(cudaGetLastError());
}

// Runs the backward kernel; with dweight (F32 [D]) also the fixed-order sum of the blocks' partial rows; with dres
// (x's dtype and shape) it is added to dx.
void launch_backward(NormRows a, const Layout& l, const Tensor& dy, const Tensor& rstd, Tensor& dx, Tensor* dgate,
                     Tensor* dweight, const Tensor& dres = Tensor()) {
  if (a.rows == 0) return;
  a.vec = a.vec && aligned16(dy.raw()) && aligned16(dx.raw()) && (dgate == nullptr || aligned16(dgate->raw())) &&
          (!dres.defined() || aligned16(dres.raw()));
  // A fixed number of row blocks for the shape (not the GPU): the partial sums, and so dweight, are reproducible.
  const int64_t groups = (a.rows + l.R - 1) / l.R, iters = (groups + kGradBlocks - 1) / kGradBlocks;
  const int64_t rows_per_block = iters * l.R, blocks = (a.rows + rows_per_block - 1) / rows_per_block;
  Tensor part = dweight != nullptr ? Tensor::empty({blocks, a.D}, DType::f32, Device::cuda) : Tensor();
  with_norm_kernel(a.t, l, [&](auto tag, auto k, auto threads) {
    using T = typename decltype(tag)::type;
    norm_backward_kernel<T, k, threads><<<static_cast<unsigned>(blocks), l.threads, 0, stream()>>>(
        a, static_cast<const T*>(dy.raw()), static_cast<const float*>(rstd.raw()), rows_per_block,
        static_cast<T*>(dx.raw_mut()), dgate != nullptr ? static_cast<T*>(dgate->raw_mut()) : nullptr,
        part.defined() ? static_cast<float*>(part.raw_mut()) : nullptr,
        dres.defined() ? static_cast<const T*>(dres.raw()) : nullptr);
  });
  GDN2_CUDA_CHECK(cudaGetLastError());
  if (dweight != nullptr)
    sum_row_parts(static_cast<const float*>(part.raw()), blocks, a.D, a.D, static_cast<float*>(dweight->raw_mut()));
}

}  // namespace

L2NormResult l2_norm_rows(const Tensor& x, double eps, int64_t rows, int64_t D) {
  const char* op = "l2_norm_forward";
  const Layout l = layout_for(D, op);
  L2NormResult r{Tensor::empty(x.shape(), x.dtype(), Device::cuda), Tensor::empty({rows}, DType::f32, Device::cuda)};
  launch_forward(norm_rows(x, Tensor(), Tensor(), nullptr, rows, D, l, op), l, eps, r.y, r.rstd);
  return r;
}

Tensor l2_norm_rows_grad(const Tensor& dy, const Tensor& y, const Tensor& rstd, int64_t rows, int64_t D) {
  const char* op = "l2_norm_backward";
  const Layout l = layout_for(D, op);
  Tensor dx = Tensor::empty(y.shape(), y.dtype(), Device::cuda);
  launch_backward(norm_rows(y, Tensor(), Tensor(), nullptr, rows, D, l, op), l, dy, rstd, dx, nullptr, nullptr);
  return dx;
}

RmsNormResult rms_norm_rows(const Tensor& x, const Tensor& weight, const Tensor& gate, const RmsNormOptions& o,
                            int64_t rows, int64_t D) {
  const char* op = "rms_norm_forward";
  const Layout l = layout_for(D, op);
  RmsNormResult r{Tensor::empty(x.shape(), x.dtype(), Device::cuda), Tensor::empty({rows}, DType::f32, Device::cuda)};
  launch_forward(norm_rows(x, weight, gate, &o, rows, D, l, op), l, o.eps, r.y, r.rstd);
  return r;
}

RmsNormGrads rms_norm_rows_grad(const Tensor& dy, const Tensor& x, const Tensor& rstd, const Tensor& weight,
                                const Tensor& gate, const RmsNormOptions& o, int64_t rows, int64_t D,
                                const Tensor& dres) {
  const char* op = "rms_norm_backward";
  const Layout l = layout_for(D, op);
  RmsNormGrads g;
  g.dx = Tensor::empty(x.shape(), x.dtype(), Device::cuda);
  if (gate.defined()) g.dgate = Tensor::empty(gate.shape(), gate.dtype(), Device::cuda);
  if (weight.defined()) g.dweight = rows > 0 ? Tensor::empty({D}, DType::f32, Device::cuda)
                                             : Tensor::zeros({D}, DType::f32, Device::cuda);
  launch_backward(norm_rows(x, weight, gate, &o, rows, D, l, op), l, dy, rstd, g.dx,
                  gate.defined() ? &g.dgate : nullptr, weight.defined() ? &g.dweight : nullptr, dres);
  return g;
}

}  // namespace gdn2::cuda
