// CUDA short causal depthwise convolution. Forward and backward: one thread per (row part, channel; the forward four
// adjacent channels where rows are four-channel aligned and the taps few), consecutive threads on consecutive channels
// (coalesced), walking its part's rows with the last W inputs in registers, so each input is read once. The backward
// walks down the rows: it forms dz = dy · act'(z), then dx (and, below a sequence's start, the initial cache's
// gradient) from the W newest dz it holds, and adds its part's weight and bias gradient terms, which a second kernel
// sums over the parts in a fixed order. Training's layout (equal sequences, no caches,
// rows of a multiple of 8 channels) takes a tiled forward and backward through shared memory instead. The decode step: one thread
// per (sequence, channel), the cache updated in place.
#include "cuda/short_conv.h"

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <type_traits>

#include "cuda/common.cuh"
#include "cuda/stream.h"
#include "cuda/elem.h"
#include "cuda/gdn2/load.cuh"
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

// The fast exponential and division (a few ulp): the tile kernels issue an instruction stream, not memory traffic, at
// their limit.
__device__ __forceinline__ float sigmoid_f(float z) { return __fdividef(1.f, 1.f + __expf(-z)); }

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
        out[e] = a.silu ? z * sigmoid_f(z) : z;
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
      if (a.silu) {
        const float z = pre_activation(a, b, w, win), s = sigmoid_f(z);
        dz *= s * (1.f + z * (1.f - s));
      }
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

// The backward of the training layout through shared memory: sequences of T rows each, no caches, at most 4 taps, C a
// multiple of 8 and 16-byte aligned rows. One block per (64 channels, kTileRows rows): it stages x (M rows above and
// below) and dy (M rows below) with 16-byte loads, forms dz = dy · act'(z) for its rows and the M below, then
// dx(r) = Σ_i w[i] dz(r + M − i) inside the sequence, written back with 16-byte stores; its rows' weight and bias
// gradient terms are summed over the block (fixed order) into part[blockIdx.y], as conv_backward_kernel's are.
constexpr int kTileRows = 64, kTileCols = 64, kTileThreads = 256, kTileHalo = 3;
constexpr int kTileGroups = kTileThreads / kTileCols;  // threads per channel, each on every kTileGroups-th row

struct alignas(16) TileSmem {
  float x[kTileRows + 2 * kTileHalo][kTileCols];  // rows r0 − M .. r0 + R + M − 1 (zero outside [0, rows))
  float dz[kTileRows + kTileHalo][kTileCols];     // rows r0 .. r0 + R + M − 1: dy, then dz
  // Row r0 + rl's place in its sequence, capped: min(position, 3) rows of its sequence above it and min(rows left
  // from it to the sequence's end, 4) (one 64-bit division per row, not per element).
  int above[kTileRows + kTileHalo], left[kTileRows + kTileHalo];
};

// Pieces of eight channels a thread takes of a tile of at most kTileRows + 2 kTileHalo rows.
constexpr int kTilePieces = ((kTileRows + 2 * kTileHalo) * (kTileCols / 8) + kTileThreads - 1) / kTileThreads;

// Rows [row0, row0 + count) of src (element type t), channels c0 .. c0 + 63, into registers: piece u is tile row
// it / 8, channels 8 (it % 8) with it = thread + u · threads (zeros outside [0, rows) and past C). Every load is
// issued before any is stored (tile_put): a load through a generic pointer cannot pass an earlier shared-memory store,
// so a loop that loads and stores would wait for each load in turn.
__device__ __forceinline__ void tile_fetch(float (&v)[kTilePieces][8], int count, const void* src, ElemType t,
                                           int64_t row0, int64_t rows, int64_t C, int64_t c0) {
#pragma unroll
  for (int u = 0; u < kTilePieces; ++u) {
    const int it = threadIdx.x + u * kTileThreads, r = it / (kTileCols / 8), c8 = 8 * (it % (kTileCols / 8));
    const int64_t row = row0 + r, col = c0 + c8;
#pragma unroll
    for (int e = 0; e < 8; ++e) v[u][e] = 0.f;
    if (r < count && row >= 0 && row < rows && col < C) load_elems<8>(src, t, row * C + col, v[u]);
  }
}

// tile_fetch's pieces into rows [0, count) of dst, 16-byte stores.
__device__ __forceinline__ void tile_put(float (*dst)[kTileCols], const float (&v)[kTilePieces][8], int count) {
#pragma unroll
  for (int u = 0; u < kTilePieces; ++u) {
    const int it = threadIdx.x + u * kTileThreads, r = it / (kTileCols / 8), c8 = 8 * (it % (kTileCols / 8));
    if (r >= count) break;
    *reinterpret_cast<float4*>(&dst[r][c8]) = make_float4(v[u][0], v[u][1], v[u][2], v[u][3]);
    *reinterpret_cast<float4*>(&dst[r][c8 + 4]) = make_float4(v[u][4], v[u][5], v[u][6], v[u][7]);
  }
}

// tile_fetch's inverse: rows [0, kTileRows) of src into rows row0.. of dst (element type t), channels c0.., 16-byte
// stores; nothing at or past `rows` or C.
__device__ __forceinline__ void tile_store(void* dst, ElemType t, const float (*src)[kTileCols], int64_t row0,
                                           int64_t rows, int64_t C, int64_t c0) {
  for (int it = threadIdx.x; it < kTileRows * (kTileCols / 8); it += kTileThreads) {
    const int rl = it / (kTileCols / 8), c8 = 8 * (it % (kTileCols / 8));
    const int64_t r = row0 + rl, col = c0 + c8;
    if (r >= rows || col >= C) continue;
    const float4 u = *reinterpret_cast<const float4*>(&src[rl][c8]), h = *reinterpret_cast<const float4*>(&src[rl][c8 + 4]);
    const float v[8] = {u.x, u.y, u.z, u.w, h.x, h.y, h.z, h.w};
    store_elems<8>(dst, t, r * C + col, v);
  }
}

// min(position in its sequence, 3) of rows row0 .. row0 + count − 1 into above (the rows of it above inside the
// sequence that a 4-slot window reaches), and with left set min(rows left to the sequence's end, 4) into left; one
// 64-bit division per row.
__device__ __forceinline__ void tile_row_places(int* above, int* left, int count, int64_t row0, int64_t T) {
  for (int rl = threadIdx.x; rl < count; rl += kTileThreads) {
    const int64_t pos = (row0 + rl) % T;
    above[rl] = static_cast<int>(pos < 3 ? pos : 3);
    if (left != nullptr) left[rl] = static_cast<int>(T - pos < 4 ? T - pos : 4);
  }
}

// The input window of tile row rl, channel cl (x tile from row r0 − M): slot j holds tap j − lo, input row
// r − (3 − j), inside the sequence when 3 − j <= above; zeros elsewhere.
__device__ __forceinline__ void tile_window(const float (*x)[kTileCols], int rl, int cl, int M, int lo, int above,
                                            float (&win)[4]) {
#pragma unroll
  for (int j = 0; j < 4; ++j) win[j] = j >= lo && 3 - j <= above ? x[rl + M - (3 - j)][cl] : 0.f;
}

__global__ void __launch_bounds__(kTileThreads)
    conv_backward_tile_kernel(ConvRows a, const void* dy, void* dx, float* part) {
  __shared__ TileSmem sm;
  const int M = a.W - 1, lo = 4 - a.W;
  const int64_t c0 = static_cast<int64_t>(blockIdx.x) * kTileCols, r0 = static_cast<int64_t>(blockIdx.y) * kTileRows;
  const int cl = threadIdx.x % kTileCols, grp = threadIdx.x / kTileCols;
  const int64_t c = c0 + cl;
  float xv[kTilePieces][8], dyv[kTilePieces][8], w[4] = {}, bias = 0.f;
  tile_fetch(xv, kTileRows + 2 * M, a.x, a.xt, r0 - M, a.rows, a.C, c0);
  tile_fetch(dyv, kTileRows + M, dy, a.xt, r0, a.rows, a.C, c0);
  if (c < a.C) {
    load_taps(a, c, w);
    bias = a.bias != nullptr ? load_elem(a.bias, a.bt, c) : 0.f;
  }
  tile_put(sm.x, xv, kTileRows + 2 * M);
  tile_put(sm.dz, dyv, kTileRows + M);
  tile_row_places(sm.above, sm.left, kTileRows + kTileHalo, r0, a.T);
  __syncthreads();
  // dz of rows r0 .. r0 + R + M − 1; the inputs of row r are x(r − M + i) from its sequence's start on. The block's
  // own rows add their weight and bias gradient terms.
  float acc[4] = {}, acc_b = 0.f;
  for (int rl = grp; rl < kTileRows + M; rl += kTileGroups) {
    const int64_t r = r0 + rl;
    if (r >= a.rows) break;
    float win[4];
    tile_window(sm.x, rl, cl, M, lo, sm.above[rl], win);
    float d = sm.dz[rl][cl];
    if (a.silu) {
      const float z = pre_activation(a, bias, w, win), sg = sigmoid_f(z);
      d *= sg * (1.f + z * (1.f - sg));
    }
    sm.dz[rl][cl] = d;
    if (rl < kTileRows) {
#pragma unroll
      for (int j = 0; j < 4; ++j) acc[j] += d * win[j];
      acc_b += d;
    }
  }
  __syncthreads();  // every dz is in place; x is read
  // dx of the block's rows, over x's place, then stored 16 bytes at a time.
  float(*dxs)[kTileCols] = sm.x;
  for (int rl = grp; rl < kTileRows; rl += kTileGroups) {
    const int left = sm.left[rl];
    float s = 0.f;
#pragma unroll
    for (int j = 0; j < 4; ++j)  // tap i = j − lo meets dz(r + M − i) = dz(r + 3 − j), inside the sequence when 3 − j < left
      if (j >= lo && 3 - j < left) s += sm.dz[rl + 3 - j][cl] * w[j];
    dxs[rl][cl] = s;
  }
  // The block's weight and bias terms: the groups' sums in order, through the dz tile (no longer read after the sync).
  __syncthreads();
  float(*red)[kTileCols] = sm.dz;
#pragma unroll
  for (int j = 0; j < 4; ++j) red[grp * 5 + j][cl] = acc[j];
  red[grp * 5 + 4][cl] = acc_b;
  tile_store(dx, a.xt, dxs, r0, a.rows, a.C, c0);
  __syncthreads();
  if (grp != 0 || c >= a.C) return;
  float* out = part + static_cast<int64_t>(blockIdx.y) * a.C * (a.W + 1);
  for (int j = lo; j < 4; ++j) {
    float t = 0.f;
    for (int g = 0; g < kTileGroups; ++g) t += red[g * 5 + j][cl];
    out[c * a.W + (j - lo)] = t;
  }
  float tb = 0.f;
  for (int g = 0; g < kTileGroups; ++g) tb += red[g * 5 + 4][cl];
  out[a.C * a.W + c] = tb;
}
static_assert(kTileGroups * 5 <= kTileRows + kTileHalo, "the group sums fit the dz tile");

// The forward of the same training layout: one block per (64 channels, kTileRows rows) stages x with the M rows above
// by 16-byte loads, forms its outputs one channel a thread (as the backward tile kernel forms dz) into a second tile,
// and writes that back with 16-byte stores.
__global__ void __launch_bounds__(kTileThreads) conv_forward_tile_kernel(ConvRows a, void* y) {
  __shared__ alignas(16) float xs[kTileRows + kTileHalo][kTileCols];  // rows r0 − M .. r0 + R − 1
  __shared__ alignas(16) float ys[kTileRows][kTileCols];
  __shared__ int above[kTileRows];  // min(position in its sequence, 3) of row r0 + rl
  const int M = a.W - 1, lo = 4 - a.W;
  const int64_t c0 = static_cast<int64_t>(blockIdx.x) * kTileCols, r0 = static_cast<int64_t>(blockIdx.y) * kTileRows;
  const int cl = threadIdx.x % kTileCols, grp = threadIdx.x / kTileCols;
  const int64_t c = c0 + cl;
  float xv[kTilePieces][8], w[4] = {}, bias = 0.f;
  tile_fetch(xv, kTileRows + M, a.x, a.xt, r0 - M, a.rows, a.C, c0);
  if (c < a.C) {
    load_taps(a, c, w);
    bias = a.bias != nullptr ? load_elem(a.bias, a.bt, c) : 0.f;
  }
  tile_put(xs, xv, kTileRows + M);
  tile_row_places(above, nullptr, kTileRows, r0, a.T);
  __syncthreads();
  for (int rl = grp; rl < kTileRows; rl += kTileGroups) {
    float win[4];
    tile_window(xs, rl, cl, M, lo, above[rl], win);
    const float z = pre_activation(a, bias, w, win);
    ys[rl][cl] = a.silu ? z * sigmoid_f(z) : z;
  }
  __syncthreads();
  tile_store(y, a.xt, ys, r0, a.rows, a.C, c0);
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

// y = act(bias + Σ_{i<M} w[i] cache[i] + w[M] x), then the cache drops its oldest input and appends x.
__global__ void conv_step_kernel(ConvRows a, void* cache, void* y) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (i >= a.N * a.C) return;
  const int64_t c = i % a.C;
  const int M = a.W - 1;
  const int64_t h = i * M;
  const float xv = load_elem(a.x, a.xt, i);
  float z = a.bias != nullptr ? load_elem(a.bias, a.bt, c) : 0.f;
  for (int k = 0; k < M; ++k) z += load_elem(a.w, a.wt, c * a.W + k) * load_elem(cache, a.ct, h + k);
  z += load_elem(a.w, a.wt, c * a.W + M) * xv;
  for (int k = 0; k + 1 < M; ++k) store_elem(cache, a.ct, h + k, load_elem(cache, a.ct, h + k + 1));
  if (M > 0) store_elem(cache, a.ct, h + M - 1, xv);
  store_elem(y, a.xt, i, a.silu ? z * sigmoid_f(z) : z);
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

// The tile kernels' layout (conv_forward_tile_kernel, conv_backward_tile_kernel): equal sequences, no caches in or
// out, at most kTileHalo + 1 taps, rows of a multiple of 8 channels starting 16-byte aligned in every tensor.
bool training_layout(const ConvRows& a, const void* dfin, std::initializer_list<const void*> ptrs, size_t elem_bytes) {
  return a.off == nullptr && a.cache == nullptr && dfin == nullptr && a.W <= kTileHalo + 1 &&
         (a.rows + kTileRows - 1) / kTileRows <= kMaxParts && rows_aligned(a.C, 8, ptrs, elem_bytes);
}

dim3 tile_grid(const ConvRows& a) {
  return dim3(static_cast<unsigned>((a.C + kTileCols - 1) / kTileCols),
              static_cast<unsigned>((a.rows + kTileRows - 1) / kTileRows));
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
      conv_forward_tile_kernel<<<tile_grid(a), kTileThreads, 0, stream()>>>(a, y);
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
    // The training layout through shared memory (conv_backward_tile_kernel), else the register walk.
    const bool tiled = training_layout(a, dfin, {a.x, dy.raw(), dx}, dtype_size(k.x.dtype()));
    const int64_t per = tiled ? kTileRows : rows_per_part(a.rows, a.C), parts = (a.rows + per - 1) / per;
    const int64_t cols = a.C * (a.W + 1);
    Tensor part = Tensor::empty({parts, cols}, DType::f32, Device::cuda);
    float* p = static_cast<float*>(part.raw_mut());
    if (tiled)
      conv_backward_tile_kernel<<<tile_grid(a), kTileThreads, 0, stream()>>>(a, dy.raw(), dx, p);
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

Tensor short_conv_decode(const Tensor& x, Tensor& cache, const Tensor& weight, const Tensor& bias,
                         ConvActivation activation) {
  const char* op = "short_conv_step";
  ConvRows a = conv_rows(x, weight, bias, cache, activation, op);
  a.N = x.size(0);
  Tensor y = Tensor::empty(x.shape(), x.dtype(), Device::cuda);
  if (a.N * a.C == 0) return y;
  check_grid(a.N * a.C, op);
  conv_step_kernel<<<flat_blocks(a.N * a.C), kThreads, 0, stream()>>>(a, cache.raw_mut(), y.raw_mut());
  GDN2_CUDA_CHECK(cudaGetLastError());
  return y;
}

}  // namespace gdn2::cuda
