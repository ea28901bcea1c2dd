// CUDA short causal depthwise convolution. Forward and backward: one thread per (row part, channel; the forward four
// adjacent channels where rows are four-channel aligned and the taps few), consecutive threads on consecutive channels
// (coalesced), walking its part's rows with the last W inputs in registers, so each input is read once. The backward
// walks down the rows: it forms dz = dy · act'(z), then dx (and, below a sequence's start, the initial cache's
// gradient) from the W newest dz it holds, and adds its part's weight and bias gradient terms, which a second kernel
// sums over the parts in a fixed order. Training's layout (equal sequences, no caches, at most 4 taps, an even
// number of channels) takes leaner walks of the same kind, the element type and the taps compile-time constants
// and the backward walking up the rows. The decode step: one thread per (sequence, channel), the cache updated in
// place.
#include "cuda/short_conv.h"

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <type_traits>

#include "cuda/common.cuh"
#include "cuda/stream.h"
#include "cuda/elem.h"
#include "cuda/fast_math.cuh"
#include "cuda/gdn2/load.cuh"
#include "cuda/vec_io.cuh"
#include "cuda/reduce.h"

namespace gdn2::cuda {

namespace {

constexpr int kThreads = 128;                   // channels per block
constexpr int64_t kTargetThreads = 1 << 20;     // (part, channel) threads a call aims at
constexpr int64_t kMinRowsPerPart = 16;         // so that reloading W − 1 inputs per part stays cheap
constexpr int64_t kMaxParts = 65535;            // grid.y
constexpr int kUnroll = 4;                      // rows whose loads a thread issues together (memory parallelism)

struct ConvRows {
  const void* x;
  const void* w;      // [C, W]
  const void* bias;   // [C], or null: 0
  const void* cache;  // [N, C, W − 1], or null: zeros
  const int64_t* off;  // [N + 1], or null: sequence n is rows [n T, (n + 1) T)
  ElemType xt, wt, bt, ct;
  int64_t rows, C, N, T;
  int W;
  bool silu;
};

// d silu(z) / dz = s (1 + z (1 − s)) with s = sigmoid(z), for both backward walks.
__device__ __forceinline__ float silu_slope(float z) {
  const float s = sigmoid_approx(z);
  return s * (1.f + z * (1.f - s));
}

__device__ __forceinline__ int64_t seq_begin(const ConvRows& a, int64_t n) {
  return a.off != nullptr ? a.off[n] : n * a.T;
}

// The sequence holding row r < rows: the last n with begin(n) <= r (an empty sequence holds no row).
__device__ __forceinline__ int64_t seq_of(const ConvRows& a, int64_t r) {
  if (a.off == nullptr) return r / a.T;
  int64_t lo = 0, hi = a.N - 1;
  while (lo < hi) {
    const int64_t mid = (lo + hi + 1) / 2;
    if (a.off[mid] <= r)
      lo = mid;
    else
      hi = mid - 1;
  }
  return lo;
}

// Input of sequence n (starting at row `begin`) at position p, channel c: x for p >= 0, the initial cache for
// −(W − 1) <= p < 0 (zeros without one), zero before.
__device__ __forceinline__ float conv_input(const ConvRows& a, int64_t n, int64_t begin, int64_t p, int64_t c) {
  if (p >= 0) return load_elem(a.x, a.xt, (begin + p) * a.C + c);
  const int M = a.W - 1;
  if (a.cache == nullptr || p < -M) return 0.f;
  return load_elem(a.cache, a.ct, (n * a.C + c) * M + (M + p));
}

// The taps right-aligned in KW slots: slot j >= lo = KW − W holds tap j − lo, so with win[j] the input at position
// t − (KW − 1) + j every index below is a compile-time constant (registers) whatever W <= KW is.
template <int KW>
__device__ __forceinline__ void load_taps(const ConvRows& a, int64_t c, float (&w)[KW]) {
  const int lo = KW - a.W;
#pragma unroll
  for (int j = 0; j < KW; ++j) w[j] = j >= lo ? load_elem(a.w, a.wt, c * a.W + (j - lo)) : 0.f;
}

// bias + Σ taps · inputs, the taps in order (as the CPU and the decode step add them).
template <int KW>
__device__ __forceinline__ float pre_activation(const ConvRows& a, float b, const float (&w)[KW],
                                                const float (&win)[KW]) {
  const int lo = KW - a.W;
  float z = b;
#pragma unroll
  for (int j = 0; j < KW; ++j)
    if (j >= lo) z += w[j] * win[j];
  return z;
}

// Rows [part · rows_per_part, ...) of channels c .. c + VEC − 1, upwards.
template <int KW, int VEC>
__global__ void __launch_bounds__(kThreads) conv_forward_kernel(ConvRows a, int64_t rows_per_part, void* y) {
  const int64_t c = (static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x) * VEC;
  if (c >= a.C) return;
  const int64_t r0 = static_cast<int64_t>(blockIdx.y) * rows_per_part;
  const int64_t r1 = r0 + rows_per_part < a.rows ? r0 + rows_per_part : a.rows;
  const int lo = KW - a.W;
  float w[VEC][KW], win[VEC][KW] = {}, b[VEC];
#pragma unroll
  for (int e = 0; e < VEC; ++e) {
    load_taps(a, c + e, w[e]);
    b[e] = a.bias != nullptr ? load_elem(a.bias, a.bt, c + e) : 0.f;
  }
  int64_t n = seq_of(a, r0), begin = seq_begin(a, n), end = seq_begin(a, n + 1);
  bool fresh = true;
  for (int64_t r = r0; r < r1; r += kUnroll) {
    float xin[kUnroll][VEC];  // the group's inputs, loaded before any is used
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      if (r + u < r1) {
        load_elems<VEC>(a.x, a.xt, (r + u) * a.C + c, xin[u]);
      } else {
#pragma unroll
        for (int e = 0; e < VEC; ++e) xin[u][e] = 0.f;
      }
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int64_t ru = r + u;
      if (ru >= r1) break;
      if (ru >= end) {  // the next non-empty sequence
        do {
          ++n;
          begin = end;
          end = seq_begin(a, n + 1);
        } while (ru >= end);
        fresh = true;
      }
      if (fresh) {
        const int64_t t = ru - begin;
#pragma unroll
        for (int e = 0; e < VEC; ++e)
#pragma unroll
          for (int j = 0; j < KW - 1; ++j)
            if (j >= lo) win[e][j] = conv_input(a, n, begin, t - (KW - 1) + j, c + e);
        fresh = false;
      }
      float out[VEC];
#pragma unroll
      for (int e = 0; e < VEC; ++e) {
        win[e][KW - 1] = xin[u][e];
        const float z = pre_activation(a, b[e], w[e], win[e]);
        out[e] = a.silu ? z * sigmoid_approx(z) : z;
#pragma unroll
        for (int j = 0; j < KW - 1; ++j) win[e][j] = win[e][j + 1];
      }
      store_elems<VEC>(y, a.xt, ru * a.C + c, out);
    }
  }
}

// final_cache[n, c, j] = input of sequence n at position L − (W − 1) + j.
__global__ void conv_final_cache_kernel(ConvRows a, float* fc) {
  const int M = a.W - 1;
  const int64_t i = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (i >= a.N * a.C * M) return;
  const int64_t j = i % M, c = (i / M) % a.C, n = i / (M * a.C);
  const int64_t begin = seq_begin(a, n), L = seq_begin(a, n + 1) - begin;
  fc[i] = conv_input(a, n, begin, L - M + j, c);
}

// Rows [part · rows_per_part, r1) of channel c, downwards, starting W − 1 rows higher (inside the sequence of row
// r1 − 1) for the dz those rows' dx need. With M = W − 1, sequence length L and row r at position t:
//   dz(r) = dy(r) · act'(z(r)),  dx(r) = Σ_i w[i] dz(r + M − i) over rows of the sequence (+ d_final_cache[t + M − L]
//   when t + M >= L), and the same sum at the virtual positions −1 .. −M gives d_initial_cache.
// part[part, c · W + i] = Σ_rows dz · input(t − M + i) and part[part, C · W + c] = Σ_rows dz. One channel a thread:
// four need about 170 registers here and ran slower on the H100 (234 against 195 us at 8192 x 2048 bf16).
template <int KW>
__global__ void __launch_bounds__(kThreads)
    conv_backward_kernel(ConvRows a, const void* dy, const void* dfin, ElemType dft, int64_t rows_per_part, void* dx,
                         float* dcache, float* part) {
  const int64_t c = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (c >= a.C) return;
  const int M = a.W - 1, lo = KW - a.W;
  const int64_t r0 = static_cast<int64_t>(blockIdx.y) * rows_per_part;
  const int64_t r1 = r0 + rows_per_part < a.rows ? r0 + rows_per_part : a.rows;
  float w[KW], win[KW] = {}, dzw[KW] = {}, acc[KW] = {}, acc_b = 0.f;  // dzw[k] = dz of row r + k (0 past the sequence)
  load_taps(a, c, w);
  const float b = a.bias != nullptr ? load_elem(a.bias, a.bt, c) : 0.f;
  int64_t n = seq_of(a, r1 - 1), begin = seq_begin(a, n), end = seq_begin(a, n + 1);
  const int64_t hi = r1 + M < end ? r1 + M : end;
  bool fresh = true;
  for (int64_t r = hi - 1; r >= r0;) {
    // A group of kUnroll rows inside the current sequence and the part, window already filled: its dy and oldest
    // inputs are loaded together up front; otherwise one row at a time.
    const bool group = !fresh && r - (kUnroll - 1) >= begin && r - (kUnroll - 1) >= r0;
    float dyv[kUnroll], old[kUnroll];
    if (group) {
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        dyv[u] = load_elem(dy, a.xt, (r - u) * a.C + c);
        old[u] = conv_input(a, n, begin, r - u - begin - M, c);
      }
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u, --r) {
      if (u > 0 && !group) break;
      if (r < begin) {  // the previous non-empty sequence
        do {
          --n;
          end = begin;
          begin = seq_begin(a, n);
        } while (r < begin);
        fresh = true;
#pragma unroll
        for (int k = 0; k < KW; ++k) dzw[k] = 0.f;
      }
      const int64_t t = r - begin, L = end - begin;
      if (fresh) {
#pragma unroll
        for (int j = 0; j < KW; ++j)
          if (j >= lo) win[j] = conv_input(a, n, begin, t - (KW - 1) + j, c);
        fresh = false;
      } else {  // one row down: every input moves up a slot and the oldest, at t − M, comes in
        float oldest;
        if (group)
          oldest = old[u];
        else
          oldest = conv_input(a, n, begin, t - M, c);
#pragma unroll
        for (int j = KW - 1; j > 0; --j) win[j] = win[j - 1];
#pragma unroll
        for (int j = 0; j < KW; ++j)
          if (j == lo) win[j] = oldest;
      }
      float dz;
      if (group)
        dz = dyv[u];
      else
        dz = load_elem(dy, a.xt, r * a.C + c);
      if (a.silu) dz *= silu_slope(pre_activation(a, b, w, win));
#pragma unroll
      for (int k = KW - 1; k > 0; --k) dzw[k] = dzw[k - 1];
      dzw[0] = dz;
      if (r >= r1) continue;  // a row above the part: only its dz was needed
#pragma unroll
      for (int j = 0; j < KW; ++j)
        if (j >= lo) acc[j] += dz * win[j];
      acc_b += dz;
      float sx = 0.f;
#pragma unroll
      for (int j = 0; j < KW; ++j)  // tap i = j − lo meets dz(r + M − i) = dzw[KW − 1 − j]
        if (j >= lo) sx += dzw[KW - 1 - j] * w[j];
      if (dfin != nullptr && t + M >= L) sx += load_elem(dfin, dft, ((n * a.C + c) * M) + (t + M - L));
      store_elem(dx, a.xt, r * a.C + c, sx);
      if (dcache != nullptr && t == 0) {  // the sequence's start: its virtual positions −1 .. −M
        const int64_t cache_row = (n * a.C + c) * M;
        for (int v = -1; v >= -M; --v) {
#pragma unroll
          for (int k = KW - 1; k > 0; --k) dzw[k] = dzw[k - 1];
          dzw[0] = 0.f;  // no output at a negative position
          float g = 0.f;
#pragma unroll
          for (int j = 0; j < KW; ++j)
            if (j >= lo) g += dzw[KW - 1 - j] * w[j];
          if (dfin != nullptr && v + M >= L) g += load_elem(dfin, dft, cache_row + (v + M - L));
          dcache[cache_row + (M + v)] = g;
        }
      }
    }
  }
  float* out = part + static_cast<int64_t>(blockIdx.y) * a.C * (a.W + 1);
#pragma unroll
  for (int j = 0; j < KW; ++j)
    if (j >= lo) out[c * a.W + (j - lo)] = acc[j];
  out[a.C * a.W + c] = acc_b;
}

// The training layout (sequences of T rows each, no caches, at most 4 taps, C even and rows 2-element aligned) takes
// leaner walks: the element type and the taps are template parameters, each thread takes two adjacent channels (one
// 4- or 8-byte access a row) of kWalkRows rows, and a row's place in its sequence is one counter, not a division.
// The shared-memory tile kernels they replaced issued about 60 (forward) and 120 (backward) instructions an element
// and were bound by that. These issue about 24 and 52 and wait on memory latency instead; two channels a thread rather
// than four leave room for more warps (H100: 29 and 61 us against 34 and 68 us at 8192 x 2048 bf16).
constexpr int kWalkVec = 2, kWalkThreads = 128, kWalkUnroll = 4, kWalkMaxTaps = 4;
constexpr int64_t kWalkRows = 32;

// A walk's part: channels c .. c + kWalkVec − 1 of rows [r0, r1), the taps and bias of those channels, and the input
// window: slot j < W − 1 holds the input W − 1 − j rows above the current row (zero above its sequence's start), slot
// W − 1 the current row's.
template <typename T, int W>
struct WalkPart {
  int64_t c, r0, r1, pos;  // pos: the current row's place in its sequence
  float w[kWalkVec][W], b[kWalkVec], win[kWalkVec][W];

  __device__ __forceinline__ bool init(const ConvRows& a, int64_t per) {
    c = (static_cast<int64_t>(blockIdx.x) * kWalkThreads + threadIdx.x) * kWalkVec;
    if (c >= a.C) return false;
    r0 = static_cast<int64_t>(blockIdx.y) * per;
    r1 = r0 + per < a.rows ? r0 + per : a.rows;
    pos = r0 % a.T;
#pragma unroll
    for (int e = 0; e < kWalkVec; ++e) {
#pragma unroll
      for (int j = 0; j < W; ++j) w[e][j] = load_elem(a.w, a.wt, (c + e) * W + j);
      b[e] = a.bias != nullptr ? load_elem(a.bias, a.bt, c + e) : 0.f;
    }
    const T* x = static_cast<const T*>(a.x);
#pragma unroll
    for (int j = 0; j < W - 1; ++j) {  // rows r0 − (W − 1 − j), inside the sequence when W − 1 − j <= pos
      float v[kWalkVec] = {};
      if (W - 1 - j <= pos) load_vec(x + (r0 - (W - 1 - j)) * a.C + c, v);
#pragma unroll
      for (int e = 0; e < kWalkVec; ++e) win[e][j] = v[e];
    }
    return true;
  }

  // Whether the group of kWalkUnroll rows from r lies inside rows [lo, hi) and inside one sequence with every row's
  // window in it (pos >= W − 1): then the walk takes it without any per-row check.
  __device__ __forceinline__ bool clean(int64_t r, int64_t lo, int64_t hi, int64_t seq_len) const {
    return r >= lo && r + kWalkUnroll <= hi && pos >= W - 1 && pos + kWalkUnroll <= seq_len;
  }

  // The row with inputs xin becomes the current one (the window drops what lies above a sequence's start); z is its
  // pre-activation, bias first and then the taps in order (as the CPU adds them).
  template <bool kEdge>
  __device__ __forceinline__ void enter(const float (&xin)[kWalkVec], float (&z)[kWalkVec]) {
#pragma unroll
    for (int e = 0; e < kWalkVec; ++e) {
      if (kEdge && pos == 0) {
#pragma unroll
        for (int j = 0; j < W - 1; ++j) win[e][j] = 0.f;
      }
      win[e][W - 1] = xin[e];
      z[e] = b[e];
#pragma unroll
      for (int j = 0; j < W; ++j) z[e] += w[e][j] * win[e][j];
    }
  }

  // One row down: the window moves up a slot, the place advances.
  __device__ __forceinline__ void leave(int64_t seq_len) {
#pragma unroll
    for (int e = 0; e < kWalkVec; ++e)
#pragma unroll
      for (int j = 0; j + 1 < W; ++j) win[e][j] = win[e][j + 1];
    if (++pos == seq_len) pos = 0;
  }
};

template <typename T, int W>
__global__ void __launch_bounds__(kWalkThreads) conv_forward_walk_kernel(ConvRows a, int64_t per, T* y) {
  WalkPart<T, W> p;
  if (!p.init(a, per)) return;
  const T* x = static_cast<const T*>(a.x);
  const int64_t C = a.C;
  for (int64_t r = p.r0; r < p.r1; r += kWalkUnroll) {
    const T* xr = x + r * C + p.c;
    T* yr = y + r * C + p.c;
    auto rows = [&](auto edge) {
      float xin[kWalkUnroll][kWalkVec];  // the group's inputs, loaded before any is used
#pragma unroll
      for (int u = 0; u < kWalkUnroll; ++u)
        if (!edge || r + u < p.r1) load_vec(xr + u * C, xin[u]);
#pragma unroll
      for (int u = 0; u < kWalkUnroll; ++u) {
        if (edge && r + u >= p.r1) break;
        float z[kWalkVec];
        p.template enter<edge>(xin[u], z);
#pragma unroll
        for (int e = 0; e < kWalkVec; ++e) z[e] = a.silu ? z[e] * sigmoid_approx(z[e]) : z[e];
        store_vec(yr + u * C, z);
        p.leave(a.T);
      }
    };
    if (p.clean(r, p.r0, p.r1, a.T))
      rows(std::false_type{});
    else
      rows(std::true_type{});
  }
}

// With M = W − 1, row r's dz = dy · act'(z) adds w[j] dz(r) to dx(r − M + j) for the j whose row lies in r's
// sequence (j >= M − place). A part walks rows r0 .. r1 + M − 1 (the M below it only for their dz), holding the
// partial dx of rows r − M .. r: dx(r − M) is complete after row r and is stored. Its rows add their weight and bias
// gradient terms into part[blockIdx.y] (summed over the parts in a fixed order by sum_row_parts).
template <typename T, int W>
__global__ void __launch_bounds__(kWalkThreads)
    conv_backward_walk_kernel(ConvRows a, const T* dy, int64_t per, T* dx, float* part) {
  constexpr int M = W - 1;
  WalkPart<T, W> p;
  if (!p.init(a, per)) return;
  const T* x = static_cast<const T*>(a.x);
  const int64_t end = p.r1 + M < a.rows ? p.r1 + M : a.rows;
  float pend[kWalkVec][W] = {}, acc[kWalkVec][W] = {}, acc_b[kWalkVec] = {};
  const int64_t C = a.C;
  for (int64_t r = p.r0; r < end; r += kWalkUnroll) {
    const T* xr = x + r * C + p.c;
    const T* dyr = dy + r * C + p.c;
    T* dxr = dx + (r - M) * C + p.c;  // dx of the rows M above
    // Clean groups: rows of the part (weight terms), each storing a dx of the part, inside one sequence.
    auto rows = [&](auto edge) {
      float xin[kWalkUnroll][kWalkVec], dyv[kWalkUnroll][kWalkVec];
#pragma unroll
      for (int u = 0; u < kWalkUnroll; ++u)
        if (!edge || r + u < end) {
          load_vec(xr + u * C, xin[u]);
          load_vec(dyr + u * C, dyv[u]);
        }
#pragma unroll
      for (int u = 0; u < kWalkUnroll; ++u) {
        const int64_t ru = r + u;
        if (edge && ru >= end) break;
        float z[kWalkVec];
        p.template enter<edge>(xin[u], z);
        const int first = edge && p.pos < M ? static_cast<int>(M - p.pos) : 0;  // the first slot in the sequence
        const bool own = !edge || ru < p.r1;
        float out[kWalkVec];
#pragma unroll
        for (int e = 0; e < kWalkVec; ++e) {
          float dz = dyv[u][e];
          if (a.silu) dz *= silu_slope(z[e]);
          if (own) {
#pragma unroll
            for (int j = 0; j < W; ++j) acc[e][j] += dz * p.win[e][j];
            acc_b[e] += dz;
          }
#pragma unroll
          for (int j = 0; j < W; ++j)
            if (!edge || j >= first) pend[e][j] += p.w[e][j] * dz;
          out[e] = pend[e][0];
#pragma unroll
          for (int j = 0; j < M; ++j) pend[e][j] = pend[e][j + 1];
          pend[e][M] = 0.f;
        }
        if (!edge || ru - M >= p.r0) store_vec(dxr + u * C, out);
        p.leave(a.T);
      }
    };
    if (p.clean(r, p.r0 + M, p.r1, a.T))
      rows(std::false_type{});
    else
      rows(std::true_type{});
  }
  // Near the last row the walk stops before r1 + M: the rows still pending end the last sequence and are complete.
#pragma unroll
  for (int j = 0; j < M; ++j) {
    const int64_t q = end - M + j;
    float out[kWalkVec];
#pragma unroll
    for (int e = 0; e < kWalkVec; ++e) out[e] = pend[e][j];
    if (q >= p.r0 && q < p.r1) store_vec(dx + q * a.C + p.c, out);
  }
  float* o = part + static_cast<int64_t>(blockIdx.y) * a.C * (W + 1);
#pragma unroll
  for (int e = 0; e < kWalkVec; ++e) {
#pragma unroll
    for (int j = 0; j < W; ++j) o[(p.c + e) * W + j] = acc[e][j];
    o[a.C * W + p.c + e] = acc_b[e];
  }
}

// d_initial_cache of the empty sequences: d_final_cache passes straight through (zeros without one).
__global__ void conv_empty_cache_grad_kernel(ConvRows a, const void* dfin, ElemType dft, float* dcache) {
  const int M = a.W - 1;
  const int64_t i = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (i >= a.N * a.C * M) return;
  const int64_t n = i / (a.C * M);
  if (seq_begin(a, n + 1) != seq_begin(a, n)) return;
  dcache[i] = dfin != nullptr ? load_elem(dfin, dft, i) : 0.f;
}

// The decode step's output, split along the channels: channels [end[p - 1], end[p]) of row n go to row n of part p.
struct StepParts {
  void* part[kShortConvStepMaxParts];
  int64_t end[kShortConvStepMaxParts];
};

// y = act(bias + Σ_{i<M} w[i] cache[i] + w[M] x), then the cache drops its oldest input and appends x.
// One thread a (channel c, row n = blockIdx.y).
__global__ void conv_step_kernel(ConvRows a, void* cache, const __grid_constant__ StepParts out) {
  pdl_trigger();  // the decode step's recurrence after it may start fetching its state (it waits for this output)
  const int64_t c = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x, n = blockIdx.y;
  if (c >= a.C) return;
  const int64_t i = n * a.C + c;
  const int M = a.W - 1;
  const int64_t h = i * M;
  const float xv = load_elem(a.x, a.xt, i);
  float z = a.bias != nullptr ? load_elem(a.bias, a.bt, c) : 0.f;
  for (int k = 0; k < M; ++k) z += load_elem(a.w, a.wt, c * a.W + k) * load_elem(cache, a.ct, h + k);
  z += load_elem(a.w, a.wt, c * a.W + M) * xv;
  for (int k = 0; k + 1 < M; ++k) store_elem(cache, a.ct, h + k, load_elem(cache, a.ct, h + k + 1));
  if (M > 0) store_elem(cache, a.ct, h + M - 1, xv);
  int p = 0;
  while (c >= out.end[p]) ++p;
  const int64_t begin = p > 0 ? out.end[p - 1] : 0;
  store_elem(out.part[p], a.xt, n * (out.end[p] - begin) + c - begin, a.silu ? z * sigmoid_approx(z) : z);
}

ConvRows conv_rows(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& cache, ConvActivation act,
                   const char* op) {
  ConvRows a{};
  a.x = x.raw();
  a.xt = elem_type(x, op, "x");
  a.w = weight.raw();
  a.wt = elem_type(weight, op, "weight");
  a.bias = bias.defined() ? bias.raw() : nullptr;
  a.bt = bias.defined() ? elem_type(bias, op, "bias") : ElemType::f32;
  a.cache = cache.defined() ? cache.raw() : nullptr;
  a.ct = cache.defined() ? elem_type(cache, op, "cache") : ElemType::f32;
  a.C = x.size(1);
  a.W = static_cast<int>(weight.size(1));
  a.silu = act == ConvActivation::silu;
  return a;
}

ConvRows conv_rows(const ShortConvCall& k, const char* op) {
  GDN2_CHECK(k.weight.size(1) <= kShortConvMaxTaps, UnsupportedError, op, " on CUDA: at most ", kShortConvMaxTaps,
             " taps, got ", k.weight.describe());
  ConvRows a = conv_rows(k.x, k.weight, k.bias, k.initial_cache, k.activation, op);
  a.off = k.seq_offsets.defined() ? static_cast<const int64_t*>(k.seq_offsets.raw()) : nullptr;
  a.rows = k.x.size(0);
  a.N = k.N;
  a.T = k.T;
  return a;
}

// Rows per part: about kTargetThreads (part, channel) threads, at least kMinRowsPerPart rows, at most kMaxParts parts.
// A function of the shape only, so the weight gradient's partial sums do not depend on the GPU.
int64_t rows_per_part(int64_t rows, int64_t C) {
  const int64_t parts = std::max<int64_t>(1, kTargetThreads / std::max<int64_t>(C, 1));
  int64_t per = std::max((rows + parts - 1) / parts, kMinRowsPerPart);
  return std::max(per, (rows + kMaxParts - 1) / kMaxParts);
}

// Whether every row of C elements of every tensor in ptrs starts n-element aligned.
bool rows_aligned(int64_t C, int n, std::initializer_list<const void*> ptrs, size_t elem_bytes) {
  if (C % n != 0) return false;
  for (const void* p : ptrs)
    if (p != nullptr && reinterpret_cast<uintptr_t>(p) % (n * elem_bytes) != 0) return false;
  return true;
}

// Channels per thread: kVec when every row of every tensor the kernel reads or writes starts kVec-element aligned.
constexpr int kVec = 4;
int conv_vec(int W, int64_t C, std::initializer_list<const void*> ptrs, size_t elem_bytes) {
  return W <= 4 && rows_aligned(C, kVec, ptrs, elem_bytes) ? kVec : 1;
}

dim3 row_grid(int64_t rows, int64_t C, int64_t per, int vec) {
  return dim3(static_cast<unsigned>((C / vec + kThreads - 1) / kThreads), static_cast<unsigned>((rows + per - 1) / per));
}

// Calls f(integral_constant KW, integral_constant VEC) for the taps' register width and the channels per thread
// (several only with the 4-tap width: the wide one's registers have no room for them).
template <class F>
void with_conv_shape(int W, int vec, F&& f) {
  using std::integral_constant;
  if (W > 4)
    f(integral_constant<int, kShortConvMaxTaps>{}, integral_constant<int, 1>{});
  else if (vec == kVec)
    f(integral_constant<int, 4>{}, integral_constant<int, kVec>{});
  else
    f(integral_constant<int, 4>{}, integral_constant<int, 1>{});
}

// The walk kernels' layout (conv_forward_walk_kernel, conv_backward_walk_kernel): equal sequences, no caches in or
// out, at most kWalkMaxTaps taps, rows of a multiple of kWalkVec channels starting kWalkVec-element aligned in every
// tensor.
bool training_layout(const ConvRows& a, const void* dfin, std::initializer_list<const void*> ptrs, size_t elem_bytes) {
  return a.off == nullptr && a.cache == nullptr && dfin == nullptr && a.W <= kWalkMaxTaps &&
         rows_aligned(a.C, kWalkVec, ptrs, elem_bytes);
}

// Rows per walk part: kWalkRows, more where the parts would not fit the grid's second dimension (a function of the
// shape only, as rows_per_part).
int64_t walk_rows(int64_t rows) { return std::max(kWalkRows, (rows + kMaxParts - 1) / kMaxParts); }

dim3 walk_grid(const ConvRows& a, int64_t per) {
  return dim3(static_cast<unsigned>((a.C / kWalkVec + kWalkThreads - 1) / kWalkThreads),
              static_cast<unsigned>((a.rows + per - 1) / per));
}

// Calls f(T{}, integral_constant W) for the element type of x and the taps of the walk kernels.
template <class F>
void with_walk_shape(ElemType t, int W, F&& f) {
  auto taps = [&](auto elem) {
    using std::integral_constant;
    switch (W) {
      case 1: f(elem, integral_constant<int, 1>{}); break;
      case 2: f(elem, integral_constant<int, 2>{}); break;
      case 3: f(elem, integral_constant<int, 3>{}); break;
      default: f(elem, integral_constant<int, 4>{});
    }
  };
  if (t == ElemType::bf16)
    taps(__nv_bfloat16{});
  else if (t == ElemType::f16)
    taps(__half{});
  else
    taps(float{});
}

unsigned flat_blocks(int64_t n) { return static_cast<unsigned>((n + kThreads - 1) / kThreads); }

void check_grid(int64_t n, const char* op) {
  GDN2_CHECK(n / kThreads < (int64_t{1} << 31) - 1, UnsupportedError, op, " on CUDA: ", n, " elements");
}

}  // namespace

ShortConvResult short_conv_apply(const ShortConvCall& k, bool want_final_cache) {
  const char* op = "short_conv_forward";
  const ConvRows a = conv_rows(k, op);
  const int M = a.W - 1;
  ShortConvResult out;
  out.y = Tensor::empty(k.x.shape(), k.x.dtype(), Device::cuda);
  if (want_final_cache) out.final_cache = Tensor::empty({a.N, a.C, M}, DType::f32, Device::cuda);
  check_grid(a.C, op);
  if (a.rows > 0 && a.C > 0) {
    void* y = out.y.raw_mut();
    if (training_layout(a, nullptr, {a.x, y}, dtype_size(k.x.dtype()))) {
      const int64_t per = walk_rows(a.rows);
      with_walk_shape(a.xt, a.W, [&](auto elem, auto taps) {
        using T = decltype(elem);
        conv_forward_walk_kernel<T, decltype(taps)::value>
            <<<walk_grid(a, per), kWalkThreads, 0, stream()>>>(a, per, static_cast<T*>(y));
      });
    } else {
      const int64_t per = rows_per_part(a.rows, a.C);
      const int vec = conv_vec(a.W, a.C, {a.x, y}, dtype_size(k.x.dtype()));
      with_conv_shape(a.W, vec, [&](auto kw, auto v) {
        conv_forward_kernel<decltype(kw)::value, decltype(v)::value>
            <<<row_grid(a.rows, a.C, per, decltype(v)::value), kThreads, 0, stream()>>>(a, per, y);
      });
    }
    GDN2_CUDA_CHECK(cudaGetLastError());
  }
  if (want_final_cache && out.final_cache.numel() > 0) {
    check_grid(out.final_cache.numel(), op);
    conv_final_cache_kernel<<<flat_blocks(out.final_cache.numel()), kThreads, 0, stream()>>>(
        a, static_cast<float*>(out.final_cache.raw_mut()));
    GDN2_CUDA_CHECK(cudaGetLastError());
  }
  return out;
}

ShortConvGrads short_conv_grad(const ShortConvCall& k, const Tensor& dy, const Tensor& d_final_cache) {
  const char* op = "short_conv_backward";
  const ConvRows a = conv_rows(k, op);
  const int M = a.W - 1;
  const bool any = a.rows > 0 && a.C > 0;
  const ElemType dft = d_final_cache.defined() ? elem_type(d_final_cache, op, "d_final_cache") : ElemType::f32;
  const void* dfin = d_final_cache.defined() ? d_final_cache.raw() : nullptr;
  ShortConvGrads g;
  g.dx = Tensor::empty(k.x.shape(), k.x.dtype(), Device::cuda);
  g.dweight = any ? Tensor::empty({a.C, a.W}, DType::f32, Device::cuda) : Tensor::zeros({a.C, a.W}, DType::f32, Device::cuda);
  if (k.bias.defined())
    g.dbias = any ? Tensor::empty({a.C}, DType::f32, Device::cuda) : Tensor::zeros({a.C}, DType::f32, Device::cuda);
  float* dcache = nullptr;
  if (k.initial_cache.defined()) {
    g.d_initial_cache = Tensor::empty({a.N, a.C, M}, DType::f32, Device::cuda);
    dcache = static_cast<float*>(g.d_initial_cache.raw_mut());
  }
  check_grid(a.C, op);
  if (any) {
    void* dx = g.dx.raw_mut();
    // The training layout's walk (conv_backward_walk_kernel), else the general register walk.
    const bool walk = training_layout(a, dfin, {a.x, dy.raw(), dx}, dtype_size(k.x.dtype()));
    const int64_t per = walk ? walk_rows(a.rows) : rows_per_part(a.rows, a.C), parts = (a.rows + per - 1) / per;
    const int64_t cols = a.C * (a.W + 1);
    Tensor part = Tensor::empty({parts, cols}, DType::f32, Device::cuda);
    float* p = static_cast<float*>(part.raw_mut());
    if (walk)
      with_walk_shape(a.xt, a.W, [&](auto elem, auto taps) {
        using T = decltype(elem);
        conv_backward_walk_kernel<T, decltype(taps)::value><<<walk_grid(a, per), kWalkThreads, 0, stream()>>>(
            a, static_cast<const T*>(dy.raw()), per, static_cast<T*>(dx), p);
      });
    else if (a.W <= 4)
      conv_backward_kernel<4><<<row_grid(a.rows, a.C, per, 1), kThreads, 0, stream()>>>(a, dy.raw(), dfin, dft, per, dx, dcache, p);
    else
      conv_backward_kernel<kShortConvMaxTaps>
          <<<row_grid(a.rows, a.C, per, 1), kThreads, 0, stream()>>>(a, dy.raw(), dfin, dft, per, dx, dcache, p);
    GDN2_CUDA_CHECK(cudaGetLastError());
    sum_row_parts(p, parts, cols, a.C * a.W, static_cast<float*>(g.dweight.raw_mut()));
    if (g.dbias.defined()) sum_row_parts(p + a.C * a.W, parts, cols, a.C, static_cast<float*>(g.dbias.raw_mut()));
  }
  if (dcache != nullptr && g.d_initial_cache.numel() > 0) {
    check_grid(g.d_initial_cache.numel(), op);
    conv_empty_cache_grad_kernel<<<flat_blocks(g.d_initial_cache.numel()), kThreads, 0, stream()>>>(a, dfin, dft, dcache);
    GDN2_CUDA_CHECK(cudaGetLastError());
  }
  return g;
}

std::vector<Tensor> short_conv_decode(const Tensor& x, Tensor& cache, const Tensor& weight, const Tensor& bias,
                                      ConvActivation activation, const std::vector<int64_t>& sizes) {
  const char* op = "short_conv_step";
  ConvRows a = conv_rows(x, weight, bias, cache, activation, op);
  a.N = x.size(0);
  // The op checked the sizes: 1 to kShortConvStepMaxParts parts, each >= 0, summing to C.
  std::vector<Tensor> ys;
  StepParts out{};
  int64_t end = 0;
  for (size_t i = 0; i < sizes.size(); ++i) {
    ys.push_back(Tensor::empty({a.N, sizes[i]}, x.dtype(), Device::cuda));
    out.part[i] = ys.back().raw_mut();
    out.end[i] = end += sizes[i];
  }
  if (a.N * a.C == 0) return ys;
  GDN2_CHECK(a.N <= kMaxParts && (a.C + kThreads - 1) / kThreads < (int64_t{1} << 31), UnsupportedError, op, ": ",
             a.N, " rows of ", a.C, " channels");
  const dim3 grid(static_cast<unsigned>((a.C + kThreads - 1) / kThreads), static_cast<unsigned>(a.N));
  conv_step_kernel<<<grid, kThreads, 0, stream()>>>(a, cache.raw_mut(), out);
  GDN2_CUDA_CHECK(cudaGetLastError());
  return ys;
}

}  // namespace gdn2::cuda
