// CUDA decode attention against per-sequence KV caches (flash-decoding): block (split, head group, sequence) walks its
// part of the sequence's visible keys in tiles, which its threads copy into shared memory by cp.async two tiles ahead
// (the walk is bound by memory latency, so many loads are kept in flight). Two kernels:
//  - tensor cores (BF16 and F16, head dim 64 or 128): the group's up to 16 query heads are the 16 rows of an mma.sync
//    tile; each warp takes 16 of a tile's 64 keys, forms S = Q Kᵀ and O += P V with its own online softmax, and the
//    block's warps merge their (max, sum, output) at the end;
//  - CUDA cores (any other case): each warp owns up to two query heads; lane j scores key j of a 32-key tile (a row of
//    the tile, conflict-free), the warp updates its running max and sum once per tile, then adds the tile's values
//    with each lane holding E adjacent elements of the output.
// With one split the block writes o, else its part's output and log-sum-exp, which a second kernel merges. The split
// count depends only on (N, L, heads), never on the lengths, so a decode step captured in a CUDA graph stays valid as
// the sequences grow. Also the per-sequence key/value write.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "cuda/attention.h"
#include "cuda/common.cuh"
#include "cuda/gdn2/kernels.h"
#include "cuda/attention_tc.cuh"  // mma.sync and ldmatrix pieces; cp_async_16, cp_async_commit, cp_async_wait
#include "cuda/stream.h"

namespace gdn2::cuda {

namespace {

constexpr int kWarps = 4;
constexpr int kHeadsPerWarp = 2;
constexpr int kMaxGroup = kWarps * kHeadsPerWarp;  // query heads per block (a larger GQA group takes several blocks)
constexpr int kKeys = 32;                          // keys per tile: one per lane when scoring
constexpr int kStages = 3;                         // tiles in shared memory: the one scored and two in flight

__device__ __forceinline__ float to_f(float x) { return x; }
__device__ __forceinline__ float to_f(__nv_bfloat16 x) { return __bfloat162float(x); }
__device__ __forceinline__ float to_f(__half x) { return __half2float(x); }
template <class T>
__device__ __forceinline__ T from_f(float x);
template <>
__device__ __forceinline__ float from_f<float>(float x) { return x; }
template <>
__device__ __forceinline__ __nv_bfloat16 from_f<__nv_bfloat16>(float x) { return __float2bfloat16(x); }
template <>
__device__ __forceinline__ __half from_f<__half>(float x) { return __float2half(x); }

struct DecodeArgs {
  const void* q;  // [N, Hq, D]
  const void* k;  // [S, L, Hkv, D]
  const void* v;
  const int32_t* len;  // [N]
  void* o;             // [N, Hq, D]
  const void* gate;    // [N, Hq, D] or null: o ⊙ gate is written
  float* part_o;       // [N, Hq, splits, D] (splits > 1)
  float* part_lse;     // [N, Hq, splits]
  int64_t L, window;
  int Hq, Hkv, D, G, subgroups, splits, chunk;
  bool vec;  // cache rows in whole 16-byte pieces: tiles copied by cp.async
  float scale;
};

// Shared memory of one block for E elements per lane (D <= 32 E): kStages tiles of kKeys key rows then kKeys value
// rows, each row W = 32 E elements and a 16-byte pad (consecutive rows 4 banks apart: lane j reading row j in 16-byte
// pieces meets no conflict); then the group's scaled queries, F32 [kMaxGroup][W].
template <class T, int E>
struct Layout {
  static constexpr int W = 32 * E;
  static constexpr int kRowBytes = W * static_cast<int>(sizeof(T)) + 16;
  static constexpr int kTileBytes = 2 * kKeys * kRowBytes;
  static constexpr size_t kBytes = size_t{kStages} * kTileBytes + sizeof(float) * kMaxGroup * W;
};

// x[e] = p[e]: E adjacent elements at an address aligned to their size (or to 16 bytes).
template <class T, int E>
__device__ __forceinline__ void load_adjacent(const T* p, float (&x)[E]) {
  struct alignas(E * sizeof(T) >= 16 ? 16 : E * sizeof(T)) Pack {
    T v[E];
  };
  const Pack k = *reinterpret_cast<const Pack*>(p);
#pragma unroll
  for (int e = 0; e < E; ++e) x[e] = to_f(k.v[e]);
}

// Σ_d row[d] q[d] over a whole padded row (W elements; the padding is zero in both).
template <class T, int W>
__device__ __forceinline__ float row_dot(const T* row, const float* q) {
  constexpr int P = 16 / sizeof(T);  // elements per 16-byte piece
  float s = 0.f;
#pragma unroll 4
  for (int c = 0; c < W / P; ++c) {
    float x[P];
    load_adjacent<T, P>(row + c * P, x);
#pragma unroll
    for (int i = 0; i < P; ++i) s = fmaf(x[i], q[c * P + i], s);
  }
  return s;
}

using attn::warp_max;
using attn::warp_sum;

// What block (split, head group, sequence) takes: sequence n, kv head hkv, query heads h0 .. h0 + gn - 1 (at most
// `rows`), and its split's visible keys [lo, hi).
struct DecodeBlock {
  int split, n, hkv, h0, gn;
  int64_t lo, hi;
};

__device__ __forceinline__ DecodeBlock decode_block(const DecodeArgs& a, int rows) {
  DecodeBlock b;
  b.split = blockIdx.x;
  b.n = blockIdx.z;
  b.hkv = blockIdx.y / a.subgroups;
  b.h0 = b.hkv * a.G + (blockIdx.y % a.subgroups) * rows;
  b.gn = min(rows, b.hkv * a.G + a.G - b.h0);
  const int64_t len = min(max(static_cast<int64_t>(a.len[b.n]), int64_t{0}), a.L);
  const int64_t start = a.window > 0 ? max(int64_t{0}, len - a.window) : 0;
  b.lo = max(start, static_cast<int64_t>(b.split) * a.chunk);
  b.hi = min(len, static_cast<int64_t>(b.split + 1) * a.chunk);
  return b;
}

// Element d of query row `row` (n · Hq + h) of the result, times the gate's element where there is one, into o.
template <class T>
__device__ __forceinline__ void store_final(const DecodeArgs& a, int64_t row, int d, float x) {
  const int64_t at = row * a.D + d;
  if (a.gate != nullptr) x *= to_f(static_cast<const T*>(a.gate)[at]);
  static_cast<T*>(a.o)[at] = from_f<T>(x);
}
// Element d of query row `row` of a split's result: into o with one split, else into the split's part.
template <class T>
__device__ __forceinline__ void store_out(const DecodeArgs& a, int64_t row, int split, int d, float x) {
  if (a.splits == 1)
    store_final<T>(a, row, d, x);
  else
    a.part_o[(row * a.splits + split) * a.D + d] = x;
}
// The split's log-sum-exp of that row (kept only with several splits, for the merge).
__device__ __forceinline__ void store_lse(const DecodeArgs& a, int64_t row, int split, float lse) {
  if (a.splits > 1) a.part_lse[row * a.splits + split] = lse;
}

template <class T, int E>
__global__ void __launch_bounds__(kWarps * 32) decode_kernel(const DecodeArgs a) {
  using Lay = Layout<T, E>;
  constexpr int W = Lay::W, kRowElems = Lay::kRowBytes / static_cast<int>(sizeof(T));
  extern __shared__ __align__(16) unsigned char smem[];
  float* sq = reinterpret_cast<float*>(smem + kStages * Lay::kTileBytes);
  const DecodeBlock blk = decode_block(a, kMaxGroup);
  const int split = blk.split, n = blk.n, hkv = blk.hkv, h0 = blk.h0, gn = blk.gn;
  const int64_t lo = blk.lo, hi = blk.hi;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;

  // The scaled queries (zero past D and past the group), and zero row padding [D, W) in every tile row: the copies
  // write [0, D) only, and the scores read whole rows.
  const T* q = static_cast<const T*>(a.q) + (static_cast<int64_t>(n) * a.Hq + h0) * a.D;
  for (int i = threadIdx.x; i < kMaxGroup * W; i += blockDim.x) {
    const int g = i / W, d = i % W;
    sq[i] = g < gn && d < a.D ? to_f(q[g * a.D + d]) * a.scale : 0.f;
  }
  const int pad = W - a.D;
  for (int i = threadIdx.x; i < kStages * 2 * kKeys * pad; i += blockDim.x)
    reinterpret_cast<T*>(smem)[(i / pad) * kRowElems + a.D + i % pad] = from_f<T>(0.f);

  const int64_t tok = static_cast<int64_t>(a.Hkv) * a.D;
  const T* kb = static_cast<const T*>(a.k) + static_cast<int64_t>(n) * a.L * tok + hkv * a.D;
  const T* vb = static_cast<const T*>(a.v) + static_cast<int64_t>(n) * a.L * tok + hkv * a.D;
  const int64_t tiles = hi > lo ? (hi - lo + kKeys - 1) / kKeys : 0;
  // Tile t's keys and values into stage t % kStages (rows past hi left as they are: never used), as one cp.async group.
  auto load = [&](int64_t t) {
    if (t < tiles) {
      unsigned char* st = smem + (t % kStages) * Lay::kTileBytes;
      const int64_t j0 = lo + t * kKeys;
      if (a.vec) {
        const int pieces = a.D * static_cast<int>(sizeof(T)) / 16;  // per row
        for (int c = threadIdx.x; c < 2 * kKeys * pieces; c += blockDim.x) {
          const int r = c / pieces, p = c % pieces;  // r: tile row (keys, then values)
          const int64_t j = j0 + r % kKeys;
          if (j < hi)
            cp_async_16(st + r * Lay::kRowBytes + p * 16,
                        reinterpret_cast<const unsigned char*>((r < kKeys ? kb : vb) + j * tok) + p * 16);
        }
      } else {
        for (int c = threadIdx.x; c < 2 * kKeys * a.D; c += blockDim.x) {
          const int r = c / a.D, d = c % a.D;
          const int64_t j = j0 + r % kKeys;
          if (j < hi) reinterpret_cast<T*>(st + r * Lay::kRowBytes)[d] = (r < kKeys ? kb : vb)[j * tok + d];
        }
      }
    }
    cp_async_commit();  // empty past the last tile: every iteration waits on the same group count
  };

  float acc[kHeadsPerWarp][E], m[kHeadsPerWarp], l[kHeadsPerWarp];
#pragma unroll
  for (int hh = 0; hh < kHeadsPerWarp; ++hh) {
    m[hh] = -INFINITY;
    l[hh] = 0.f;  // this lane's share of the sum
#pragma unroll
    for (int e = 0; e < E; ++e) acc[hh][e] = 0.f;
  }
  load(0);
  load(1);
  for (int64_t t = 0; t < tiles; ++t) {
    cp_async_wait<1>();  // tile t has landed (t + 1 may be in flight)
    __syncthreads();     // for every thread's copies; and every warp is done with tile t - 1, whose stage t + 2 takes
    load(t + 2);
    const unsigned char* st = smem + (t % kStages) * Lay::kTileBytes;
    const int valid = static_cast<int>(min(static_cast<int64_t>(kKeys), hi - (lo + t * kKeys)));
    float p[kHeadsPerWarp];
#pragma unroll
    for (int hh = 0; hh < kHeadsPerWarp; ++hh) {
      p[hh] = 0.f;
      const int g = warp + hh * kWarps;
      if (g >= gn) break;
      const float dot = row_dot<T, W>(reinterpret_cast<const T*>(st + lane * Lay::kRowBytes), sq + g * W);
      const float s = lane < valid ? dot : -INFINITY;
      const float mn = fmaxf(m[hh], warp_max(s));
      const float c = mn == -INFINITY ? 1.f : expf(m[hh] - mn);
      p[hh] = mn == -INFINITY ? 0.f : expf(s - mn);
      l[hh] = l[hh] * c + p[hh];
      m[hh] = mn;
#pragma unroll
      for (int e = 0; e < E; ++e) acc[hh][e] *= c;
    }
    const T* vrows = reinterpret_cast<const T*>(st + kKeys * Lay::kRowBytes) + lane * E;
    for (int j = 0; j < valid; ++j) {
      float v[E];
      load_adjacent<T, E>(vrows + j * kRowElems, v);
#pragma unroll
      for (int hh = 0; hh < kHeadsPerWarp; ++hh) {
        if (warp + hh * kWarps >= gn) break;
        const float pj = __shfl_sync(0xffffffffu, p[hh], j);
#pragma unroll
        for (int e = 0; e < E; ++e) acc[hh][e] = fmaf(pj, v[e], acc[hh][e]);
      }
    }
  }
  cp_async_wait<0>();

#pragma unroll
  for (int hh = 0; hh < kHeadsPerWarp; ++hh) {
    const int g = warp + hh * kWarps;
    if (g >= gn) break;
    const float sum = warp_sum(l[hh]);
    const int64_t row = static_cast<int64_t>(n) * a.Hq + h0 + g;
#pragma unroll
    for (int e = 0; e < E; ++e) {
      const int d = lane * E + e;
      if (d >= a.D) break;
      store_out<T>(a, row, split, d, sum > 0.f ? acc[hh][e] / sum : 0.f);
    }
    if (lane == 0) store_lse(a, row, split, sum > 0.f ? m[hh] + logf(sum) : -INFINITY);
  }
}

// Tensor-core kernel (see the file comment), head dim D (64 or 128), T = BF16 or F16.
template <int D>
struct TcLayout {
  static constexpr int kRows = 16;     // query heads per block
  static constexpr int kTileKeys = 64;  // keys per tile, 16 a warp
  static constexpr int kLd = D + 8;     // shared-memory row stride (elements): conflict-free ldmatrix phases
  static constexpr int kStageElems = 2 * kTileKeys * kLd;  // K rows, then V rows
  template <class T>
  static constexpr size_t bytes() {
    return static_cast<size_t>(kRows * kLd + kStages * kStageElems) * sizeof(T);
  }
  // The warps' merge reuses the tiles' space: per warp and row the raw-score max and the sum, then the outputs.
  static_assert(sizeof(float) * kWarps * kRows * (D + 2) <= sizeof(uint16_t) * kStages * kStageElems, "merge fits");
};

template <class T, int D>
__global__ void __launch_bounds__(kWarps * 32) decode_tc_kernel(const DecodeArgs a) {
  using namespace attn;
  using Lay = TcLayout<D>;
  constexpr int kLd = Lay::kLd, kTileKeys = Lay::kTileKeys, kRows = Lay::kRows;
  extern __shared__ uint4 tc_smem[];
  T* sQ = reinterpret_cast<T*>(tc_smem);
  T* sKV = sQ + kRows * kLd;
  const DecodeBlock blk = decode_block(a, kRows);
  const int split = blk.split, n = blk.n, hkv = blk.hkv, h0 = blk.h0, gn = blk.gn;
  const int64_t lo = blk.lo, hi = blk.hi;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t4 = lane % 4;
  const int64_t tiles = hi > lo ? (hi - lo + kTileKeys - 1) / kTileKeys : 0;

  const int64_t tok = static_cast<int64_t>(a.Hkv) * D;
  const T* kb = static_cast<const T*>(a.k) + static_cast<int64_t>(n) * a.L * tok + hkv * D;
  const T* vb = static_cast<const T*>(a.v) + static_cast<int64_t>(n) * a.L * tok + hkv * D;
  // The group's queries (rows past gn zero), then tiles 0 and 1; keys at or past hi come in as zero rows.
  load_tile_async<T, kRows, D, kLd, kWarps * 32>(sQ, static_cast<const T*>(a.q) + (static_cast<int64_t>(n) * a.Hq + h0) * D,
                                                 0, gn, D);
  cp_async_commit();
  auto load = [&](int64_t t) {
    if (t < tiles) {
      T* st = sKV + (t % kStages) * Lay::kStageElems;
      const int64_t j0 = lo + t * kTileKeys;
      load_tile_async<T, kTileKeys, D, kLd, kWarps * 32>(st, kb, j0, hi, tok);
      load_tile_async<T, kTileKeys, D, kLd, kWarps * 32>(st + kTileKeys * kLd, vb, j0, hi, tok);
    }
    cp_async_commit();  // empty past the last tile: every iteration waits on the same group count
  };
  load(0);
  load(1);
  cp_async_wait<2>();  // the queries have landed
  __syncthreads();
  uint32_t qf[D / 16][4];
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk) ldsm_a(qf[kk], sQ, kLd, 0, 16 * kk, lane);

  const float sl2 = a.scale * kLog2e;
  float acc[D / 8][4] = {};
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};  // rows g and g + 8: running raw-score max, this lane's sum
  for (int64_t t = 0; t < tiles; ++t) {
    cp_async_wait<1>();  // tile t has landed (t + 1 may be in flight)
    __syncthreads();     // for every thread's copies; and every warp is done with tile t - 1, whose stage t + 2 takes
    load(t + 2);
    const T* tk = sKV + (t % kStages) * Lay::kStageElems + 16 * warp * kLd;  // this warp's 16 keys
    const T* tv = sKV + (t % kStages) * Lay::kStageElems + kTileKeys * kLd;
    const int64_t j0 = lo + t * kTileKeys + 16 * warp;
    if (j0 >= hi) continue;  // no barrier follows in this iteration
    float s[2][4] = {};
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) mma_row_nk<T, 16>(s, qf[kk], tk, kLd, 16 * kk, lane);
#pragma unroll
    for (int nt = 0; nt < 2; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e)
        if (j0 + 8 * nt + 2 * t4 + (e & 1) >= hi) s[nt][e] = -INFINITY;
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      const float mx = quad_max(fmaxf(fmaxf(m[r], fmaxf(s[0][2 * r], s[0][2 * r + 1])),
                                      fmaxf(s[1][2 * r], s[1][2 * r + 1])));
      const float shift = mx == -INFINITY ? 0.f : mx * sl2;
      const float corr = m[r] == -INFINITY ? 0.f : exp2f(m[r] * sl2 - shift);
      m[r] = mx;
      l[r] *= corr;
#pragma unroll
      for (int dt = 0; dt < D / 8; ++dt) {
        acc[dt][2 * r] *= corr;
        acc[dt][2 * r + 1] *= corr;
      }
#pragma unroll
      for (int nt = 0; nt < 2; ++nt)
#pragma unroll
        for (int e = 2 * r; e < 2 * r + 2; ++e) {
          const float x = s[nt][e];
          const float p = x == -INFINITY ? 0.f : exp2f(fmaf(x, sl2, -shift));
          s[nt][e] = p;
          l[r] += p;
        }
    }
    uint32_t pa[4];
    acc_to_a<T>(pa, s[0], s[1]);
    mma_row_kn<T, D>(acc, pa, tv, kLd, 16 * warp, lane);
  }
  cp_async_wait<0>();
  __syncthreads();  // the tiles' space is free for the merge

  float* sm = reinterpret_cast<float*>(tc_smem);  // [kWarps][kRows]
  float* sl = sm + kWarps * kRows;                // [kWarps][kRows]
  float* so = sl + kWarps * kRows;                // [kWarps][kRows][D]
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int row = g + 8 * r;
    const float sum = quad_sum(l[r]);
    if (t4 == 0) {
      sm[warp * kRows + row] = m[r];
      sl[warp * kRows + row] = sum;
    }
#pragma unroll
    for (int dt = 0; dt < D / 8; ++dt) {
      so[(warp * kRows + row) * D + 8 * dt + 2 * t4] = acc[dt][2 * r];
      so[(warp * kRows + row) * D + 8 * dt + 2 * t4 + 1] = acc[dt][2 * r + 1];
    }
  }
  __syncthreads();
  for (int i = threadIdx.x; i < gn * D; i += blockDim.x) {
    const int row = i / D, d = i % D;
    float M = -INFINITY;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) M = fmaxf(M, sm[w * kRows + row]);
    float sum = 0.f, out = 0.f;
    if (M != -INFINITY) {
#pragma unroll
      for (int w = 0; w < kWarps; ++w) {
        const float mw = sm[w * kRows + row];
        const float f = mw == -INFINITY ? 0.f : exp2f((mw - M) * sl2);
        sum += sl[w * kRows + row] * f;
        out += so[(w * kRows + row) * D + d] * f;
      }
    }
    const int64_t orow = static_cast<int64_t>(n) * a.Hq + h0 + row;
    store_out<T>(a, orow, split, d, sum > 0.f ? out / sum : 0.f);
    if (d == 0) store_lse(a, orow, split, sum > 0.f ? M * a.scale + logf(sum) : -INFINITY);
  }
}

// One block per (sequence, query head): o = Σ_s exp(lse_s − M) o_s / Σ_s exp(lse_s − M).
template <class T>
__global__ void combine_kernel(const DecodeArgs a) {
  const int64_t row = blockIdx.x;
  const float* lse = a.part_lse + row * a.splits;
  float M = -INFINITY;
  for (int s = 0; s < a.splits; ++s) M = fmaxf(M, lse[s]);
  for (int d = threadIdx.x; d < a.D; d += blockDim.x) {
    float sum = 0.f, out = 0.f;
    if (M != -INFINITY)
      for (int s = 0; s < a.splits; ++s) {
        const float f = expf(lse[s] - M);
        sum += f;
        out += f * a.part_o[(row * a.splits + s) * a.D + d];
      }
    store_final<T>(a, row, d, sum > 0.f ? out / sum : 0.f);
  }
}

template <class T>
__global__ void kv_write_kernel(T* cache, const T* x, const int32_t* pos, int64_t N, int64_t L, int64_t row) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < N * row;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t n = i / row, p = pos[n];
    if (p >= 0 && p < L) cache[(n * L + p) * row + i % row] = x[i];
  }
}

template <class F>
void by_type(DType dt, F&& f) {
  switch (dt) {
    case DType::f32: f(float{}); break;
    case DType::bf16: f(__nv_bfloat16{}); break;
    case DType::f16: f(__half{}); break;
    default: GDN2_THROW(DTypeError, "attention_decode: F32, BF16 or F16 on the GPU, got ", dtype_name(dt));
  }
}

// The kernel (decode_kernel<T, E> or decode_tc_kernel<T, D>) over (splits, head groups, sequences), then the merge.
// Splits: enough blocks for one full wave of the device (as many as fit on its SMs at once), each part at least 64
// keys; one part with a window, whose keys sit anywhere in [0, L).
template <class T>
void launch_decode(void (*kernel)(DecodeArgs), size_t smem, DecodeArgs a, int64_t N) {
  GDN2_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
  int per_sm = 0;
  GDN2_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, kWarps * 32, smem));
  const int64_t blocks = N * a.Hkv * a.subgroups;
  const int64_t want = std::max<int64_t>(1, sm_count() * static_cast<int64_t>(std::max(per_sm, 1)) / blocks);
  const int64_t splits = a.window > 0 ? 1 : std::clamp<int64_t>(want, 1, std::max<int64_t>(1, (a.L + 63) / 64));
  a.splits = static_cast<int>(splits);
  a.chunk = static_cast<int>((a.L + splits - 1) / splits);
  Tensor part_o, part_lse;
  if (splits > 1) {
    part_o = Tensor::empty({N, a.Hq, splits, a.D}, DType::f32, Device::cuda);
    part_lse = Tensor::empty({N, a.Hq, splits}, DType::f32, Device::cuda);
    a.part_o = static_cast<float*>(part_o.raw_mut());
    a.part_lse = static_cast<float*>(part_lse.raw_mut());
  }
  const dim3 grid(static_cast<unsigned>(splits), static_cast<unsigned>(a.Hkv * a.subgroups), static_cast<unsigned>(N));
  kernel<<<grid, kWarps * 32, smem, stream()>>>(a);
  GDN2_CUDA_CHECK(cudaGetLastError());
  if (splits > 1) {
    combine_kernel<T><<<static_cast<unsigned>(N * a.Hq), std::min(a.D, 256), 0, stream()>>>(a);
    GDN2_CUDA_CHECK(cudaGetLastError());
  }
}

}  // namespace

Tensor attention_decode(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache, const Tensor& lengths,
                        double scale, int64_t window, const Tensor& gate) {
  const int64_t N = q.size(0), Hq = q.size(1), D = q.size(2), L = k_cache.size(1), Hkv = k_cache.size(2);
  Tensor o = Tensor::empty(q.shape(), q.dtype(), Device::cuda);
  if (N == 0 || Hq == 0) return o;
  DecodeArgs a{};
  a.q = q.raw();
  a.k = k_cache.raw();
  a.v = v_cache.raw();
  a.len = static_cast<const int32_t*>(lengths.raw());
  a.o = o.raw_mut();
  a.gate = gate.defined() ? gate.raw() : nullptr;
  a.L = L;
  a.window = window;
  a.Hq = static_cast<int>(Hq);
  a.Hkv = static_cast<int>(Hkv);
  a.D = static_cast<int>(D);
  a.G = static_cast<int>(Hq / Hkv);
  a.scale = static_cast<float>(scale);
  const size_t esize = dtype_size(q.dtype());
  const auto aligned = [](const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; };
  a.vec = D * static_cast<int64_t>(esize) % 16 == 0 && aligned(a.k) && aligned(a.v);
  const bool tc = q.dtype() != DType::f32 && (D == 64 || D == 128) && a.vec && aligned(a.q);
  const int rows = tc ? TcLayout<64>::kRows : kMaxGroup;  // query heads per block
  a.subgroups = (a.G + rows - 1) / rows;
  by_type(q.dtype(), [&](auto t) {
    using T = decltype(t);
    if constexpr (!std::is_same_v<T, float>) {
      if (tc) {
        if (D == 64)
          launch_decode<T>(decode_tc_kernel<T, 64>, TcLayout<64>::template bytes<T>(), a, N);
        else
          launch_decode<T>(decode_tc_kernel<T, 128>, TcLayout<128>::template bytes<T>(), a, N);
        return;
      }
    }
    if (D <= 64)
      launch_decode<T>(decode_kernel<T, 2>, Layout<T, 2>::kBytes, a, N);
    else if (D <= 128)
      launch_decode<T>(decode_kernel<T, 4>, Layout<T, 4>::kBytes, a, N);
    else
      launch_decode<T>(decode_kernel<T, 8>, Layout<T, 8>::kBytes, a, N);
  });
  return o;
}

void kv_cache_write(Tensor& cache, const Tensor& x, const Tensor& positions) {
  const int64_t N = x.size(0), row = x.size(1) * x.size(2);
  if (N == 0 || row == 0) return;
  const auto blocks = static_cast<unsigned>(std::min<int64_t>((N * row + 255) / 256, 4096));
  by_type(x.dtype(), [&](auto t) {
    using T = decltype(t);
    kv_write_kernel<T><<<blocks, 256, 0, stream()>>>(static_cast<T*>(cache.raw_mut()), static_cast<const T*>(x.raw()),
                                                     static_cast<const int32_t*>(positions.raw()), N,
                                                     cache.size(1), row);
  });
  GDN2_CUDA_CHECK(cudaGetLastError());
}

}  // namespace gdn2::cuda
