// Token-recurrent GDN-2 on the GPU: decode (one token per sequence, state updated in place) and short multi-token
// runs (speculative verify). A block works on (sequence, value head, 32-, 64- or 128-column slice of V) items in turn;
// its warps split the K rows; the state slice lives in registers, fp32 or bf16 in memory (a template parameter).
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <type_traits>

#include "cuda/common.cuh"
#include "cuda/gdn2/kernels.h"
#include "cuda/gdn2/load.cuh"
#include "cuda/vec_io.cuh"

namespace gdn2::cuda {

namespace {

// Sums of a and of b over the block's WARPS warps (the L2 norms of q and k), in one exchange.
template <int WARPS>
__device__ __forceinline__ void block_sum2(float& a, float& b, float2* scratch) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) a += __shfl_xor_sync(0xffffffffu, a, o), b += __shfl_xor_sync(0xffffffffu, b, o);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) scratch[warp] = make_float2(a, b);
  __syncthreads();
  a = 0.f, b = 0.f;
#pragma unroll
  for (int w = 0; w < WARPS; ++w) a += scratch[w].x, b += scratch[w].y;
  __syncthreads();
}

// CPL adjacent state elements of one row, moved in one access of CPL * sizeof(S) bytes when all exist and the address
// is aligned, else element by element. `valid` counts the columns in range from the first.
template <typename S, int CPL>
__device__ __forceinline__ bool whole_pack(const S* p, int valid) {
  return CPL > 1 && valid >= CPL && reinterpret_cast<uintptr_t>(p) % (CPL * sizeof(S)) == 0;
}

template <typename S, int CPL>
__device__ __forceinline__ void load_state(const S* p, int64_t i, int valid, float (&x)[CPL]) {
  if constexpr (CPL > 1) {
    if (whole_pack<S, CPL>(p + i, valid)) return load_vec(p + i, x);
  }
#pragma unroll
  for (int c = 0; c < CPL; ++c) x[c] = c < valid ? to_f32(p[i + c]) : 0.f;
}

template <typename S, int CPL>
__device__ __forceinline__ void store_state(S* p, int64_t i, int valid, const float (&x)[CPL]) {
  if constexpr (CPL > 1) {
    if (whole_pack<S, CPL>(p + i, valid)) return store_vec(p + i, x);
  }
#pragma unroll
  for (int c = 0; c < CPL; ++c)
    if (c < valid) p[i + c] = from_f32<S>(x[c]);
}

// State element type S (fp32 or bf16), CPL adjacent columns per lane (32 * CPL columns a block), WARPS warps
// splitting the K <= KMAX rows. The launch bounds let as many blocks share an SM as their state registers allow
// (a thread's KMAX / WARPS * CPL state values, plus about 48 registers of its own): many small blocks on an SM keep
// its loads of one block's state in flight while another computes.
template <typename S, int CPL, int WARPS, int KMAX>
struct Shape {
  static constexpr int kRows = KMAX / WARPS;  // state rows per thread
  static constexpr int kCols = 32 * CPL;
  static constexpr int kRegs = kRows * CPL + 48;
  static constexpr int kMinBlocks = 65536 / (WARPS * 32 * kRegs) > 0 ? 65536 / (WARPS * 32 * kRegs) : 1;
};

// A lane's CPL state values of one row copied to shared memory without passing registers (cp.async), when they are
// whole, aligned and at least 4 bytes; the lane then reads them back itself.
template <typename S, int CPL>
constexpr bool kAsyncCopy = CPL * sizeof(S) >= 4;

template <typename S, int CPL>
__device__ __forceinline__ bool copy_state_async(S* dst, const S* src, int valid) {
  if constexpr (kAsyncCopy<S, CPL>) {
    if (valid < CPL || reinterpret_cast<uintptr_t>(src) % (CPL * sizeof(S)) != 0) return false;
    const uint32_t d = static_cast<uint32_t>(__cvta_generic_to_shared(dst));
    if constexpr (CPL * sizeof(S) == 16)
      asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(d), "l"(src) : "memory");
    else if constexpr (CPL * sizeof(S) == 8)
      asm volatile("cp.async.ca.shared.global [%0], [%1], 8;\n" ::"r"(d), "l"(src) : "memory");
    else
      asm volatile("cp.async.ca.shared.global [%0], [%1], 4;\n" ::"r"(d), "l"(src) : "memory");
    return true;
  } else {
    return false;
  }
}

// One token's inputs as loaded, converted when used: every load of a token is issued before any value is used, so
// their latencies overlap (one L2 round trip a token instead of one per input). A lane's CPL columns of w and v; a
// thread's rows threadIdx.x + j * blockDim.x (j < DPT) of q, k, b and the decay.
template <int CPL, int DPT>
struct TokenIn {
  uint32_t w[CPL], v[CPL], q[DPT], k[DPT], b[DPT];
  DecayBits g[DPT];
};

// Work items are (column slice, value head, sequence), slices fastest. Blocks stay resident and walk the items
// gridDim.x apart; while one item computes, the next item's state slice comes into shared memory (each lane its own
// values, so no barrier guards it), so the state traffic overlaps the compute of the items before it instead of
// every block loading, computing and storing in step.
template <typename S, int CPL, int WARPS, int KMAX>
__global__ void __launch_bounds__(WARPS * 32, (Shape<S, CPL, WARPS, KMAX>::kMinBlocks))
    recurrent_kernel(Gdn2Params p, int slices, int64_t items) {
  using Sh = Shape<S, CPL, WARPS, KMAX>;
  constexpr int RPT = Sh::kRows;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int K = p.K, V = p.V, group = p.HV / p.H;
  __shared__ float sq[KMAX], sk[KMAX], seg[KMAX], sbk[KMAX];
  __shared__ float red[WARPS][Sh::kCols];
  __shared__ float2 scratch[WARPS];
  extern __shared__ __align__(16) unsigned char next_raw[];  // [RPT][WARPS * 32][CPL] S: the next item's state
  S* next = reinterpret_cast<S*>(next_raw) + threadIdx.x * CPL;
  constexpr int kNextRowStride = WARPS * 32 * CPL;
  const S* h0 = static_cast<const S*>(p.h0);
  S* ht = static_cast<S*>(p.ht);
  auto item_at = [&](int64_t item, int& col, int& hv, int& n) {
    col = static_cast<int>(item % slices) * Sh::kCols + CPL * lane;
    hv = static_cast<int>((item / slices) % p.HV);
    n = static_cast<int>(item / (static_cast<int64_t>(slices) * p.HV));
  };
  auto state_at = [&](int n, int hv, int r, int col) {
    return ((static_cast<int64_t>(n) * p.HV + hv) * K + r) * V + col;
  };
  constexpr int DPT = (KMAX + WARPS * 32 - 1) / (WARPS * 32);
  auto issue = [&](int64_t tok, int hv, int hq, int col, int valid) {
    TokenIn<CPL, DPT> in;
#pragma unroll
    for (int c = 0; c < CPL; ++c) {
      const bool ok = c < valid;
      const int64_t vi = tok * p.v.stride_token + hv * p.v.stride_head + col + c;
      in.v[c] = ok ? load_bits(p.v.ptr, p.v.type, vi) : 0u;
      in.w[c] = ok ? gate_bits(p.w, tok, hv, group, p.HV, col + c) : 0u;
    }
#pragma unroll
    for (int j = 0; j < DPT; ++j) {
      const int d = threadIdx.x + j * WARPS * 32;
      const bool ok = d < K;
      in.q[j] = ok ? load_bits(p.q.ptr, p.q.type, tok * p.q.stride_token + hq * p.q.stride_head + d) : 0u;
      in.k[j] = ok ? load_bits(p.k.ptr, p.k.type, tok * p.k.stride_token + hq * p.k.stride_head + d) : 0u;
      in.b[j] = ok ? gate_bits(p.b, tok, hv, group, p.HV, d) : 0u;
      in.g[j] = ok ? decay_bits(p, tok, hv, d) : DecayBits{};
    }
    return in;
  };
  // Starts the copies of an item's state slice (bit i of `queued`: row i's copy is on its way); rows whose copy cannot
  // go asynchronously are loaded when used.
  static_assert(RPT <= 64, "one bit per row");
  uint64_t queued = 0;
  auto prefetch = [&](int64_t item) {
    int col, hv, n;
    item_at(item, col, hv, n);
    queued = 0;
    if (h0 != nullptr) {
      const S* src = h0 + state_at(n, hv, warp * RPT, col);
#pragma unroll
      for (int i = 0; i < RPT; ++i)
        if (warp * RPT + i < K && copy_state_async<S, CPL>(next + i * kNextRowStride, src + i * V, V - col))
          queued |= uint64_t{1} << i;
    }
    asm volatile("cp.async.commit_group;\n" ::: "memory");
  };
  // Launched with programmatic dependent launch: the kernel before (the short conv of q, k and v) may still run. The
  // first item's state does not depend on it; its lines are asked into L2 now (where writes meet: nothing stale is
  // read), and everything else waits.
  if (blockIdx.x < items && h0 != nullptr) {
    int col, hv, n;
    item_at(blockIdx.x, col, hv, n);
#pragma unroll
    for (int i = 0; i < RPT; ++i)
      if (warp * RPT + i < K && col < V) prefetch_l2(h0 + state_at(n, hv, warp * RPT + i, col));
  }
  pdl_wait();
  if (blockIdx.x < items) prefetch(blockIdx.x);
  for (int64_t item = blockIdx.x; item < items; item += gridDim.x) {
    int col, hv, n;
    item_at(item, col, hv, n);
    const int hq = hv / group;
    const int valid = V - col;  // this lane's columns in range: min(CPL, valid)
    // State slice: rows warp*RPT + i, columns col .. col + CPL - 1, from the prefetch or loaded now.
    float s[RPT][CPL];
    asm volatile("cp.async.wait_all;\n" ::: "memory");
#pragma unroll
    for (int i = 0; i < RPT; ++i) {
      const int r = warp * RPT + i;
      if (queued & (uint64_t{1} << i)) {
#pragma unroll
        for (int c = 0; c < CPL; ++c) s[i][c] = to_f32(next[i * kNextRowStride + c]);
      } else if (h0 != nullptr && r < K) {
        load_state<S, CPL>(h0, state_at(n, hv, r, col), valid, s[i]);
      } else {
#pragma unroll
        for (int c = 0; c < CPL; ++c) s[i][c] = 0.f;
      }
    }
    if (item + gridDim.x < items) {
      __syncthreads();  // every lane's reads of the buffer are done before copies into it start (a barrier orders them)
      prefetch(item + gridDim.x);
    }
    int64_t t0, t1;
    sequence_range(p, n, t0, t1);
    for (int64_t tok = t0; tok < t1; ++tok) {
      const TokenIn<CPL, DPT> in = issue(tok, hv, hq, col, valid);
      // w ⊙ v on this lane's columns; q, k, exp(g), b for this token, shared by the block; the norms of q and k are
      // folded in below.
      float x[CPL];
#pragma unroll
      for (int c = 0; c < CPL; ++c)
        x[c] = c < valid ? gate_value(p.w, in.w[c], 1.f) * bits_value(in.v[c], p.v.type) : 0.f;
      float qss = 0.f, kss = 0.f;
#pragma unroll
      for (int j = 0; j < DPT; ++j) {
        const int d = threadIdx.x + j * WARPS * 32;
        if (d < K) {
          const float qd = bits_value(in.q[j], p.q.type), kd = bits_value(in.k[j], p.k.type);
          sq[d] = qd;
          sk[d] = kd;
          qss += qd * qd;
          kss += kd * kd;
          seg[d] = __expf(decay_value(p, in.g[j]));
          sbk[d] = gate_value(p.b, in.b[j], 0.f);
        }
      }
      float qscale = p.scale, kscale = 1.f;
      if (p.l2norm) {
        block_sum2<WARPS>(qss, kss, scratch);
        qscale *= rsqrtf(qss + 1e-6f);
        kscale = rsqrtf(kss + 1e-6f);
      }
      __syncthreads();
      // Decay and erase read: e = S^T (b ⊙ k).
      float acc[CPL] = {};
#pragma unroll
      for (int i = 0; i < RPT; ++i) {
        const int r = warp * RPT + i;
        if (r < K) {
          const float e = seg[r], bk = sbk[r] * sk[r] * kscale;
#pragma unroll
          for (int c = 0; c < CPL; ++c) {
            s[i][c] *= e;
            acc[c] += bk * s[i][c];
          }
        }
      }
#pragma unroll
      for (int c = 0; c < CPL; ++c) red[warp][CPL * lane + c] = acc[c];
      __syncthreads();
      float u[CPL];
#pragma unroll
      for (int c = 0; c < CPL; ++c) {
        float erase = 0.f;
#pragma unroll
        for (int w = 0; w < WARPS; ++w) erase += red[w][CPL * lane + c];
        u[c] = c < valid ? x[c] - erase : 0.f;
      }
      __syncthreads();
      // Write and read: S += k u^T; o = S^T (scale q).
      float oacc[CPL] = {};
#pragma unroll
      for (int i = 0; i < RPT; ++i) {
        const int r = warp * RPT + i;
        if (r < K) {
          const float kr = sk[r] * kscale, qr = sq[r] * qscale;
#pragma unroll
          for (int c = 0; c < CPL; ++c) {
            s[i][c] += kr * u[c];
            oacc[c] += qr * s[i][c];
          }
        }
      }
#pragma unroll
      for (int c = 0; c < CPL; ++c) red[warp][CPL * lane + c] = oacc[c];
      __syncthreads();
      if (warp == 0) {
#pragma unroll
        for (int c = 0; c < CPL; ++c) {
          float o = 0.f;
#pragma unroll
          for (int w = 0; w < WARPS; ++w) o += red[w][CPL * lane + c];
          if (c < valid) store_elem(p.o, p.o_type, (tok * p.HV + hv) * V + col + c, o);
        }
      }
      __syncthreads();
    }
    if (ht != nullptr) {
#pragma unroll
      for (int i = 0; i < RPT; ++i) {
        const int r = warp * RPT + i;
        if (r < K) store_state<S, CPL>(ht, state_at(n, hv, r, col), valid, s[i]);
      }
    }
  }
}

template <typename S, int CPL, int WARPS>
void launch_shape(const Gdn2Params& p) {
  auto go = [&](auto kmax) {
    constexpr int KMAX = decltype(kmax)::value;
    using Sh = Shape<S, CPL, WARPS, KMAX>;
    constexpr auto kernel = recurrent_kernel<S, CPL, WARPS, KMAX>;
    constexpr size_t smem = kAsyncCopy<S, CPL> ? sizeof(S) * KMAX * Sh::kCols : 0;  // the next item's state slice
    // Resident blocks per SM with that shared memory, once per shape.
    static const int resident = [] {
      int b = 0;
      GDN2_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
      GDN2_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&b, kernel, WARPS * 32, smem));
      return b > 0 ? b : 1;
    }();
    const int slices = (p.V + Sh::kCols - 1) / Sh::kCols;
    const int64_t items = static_cast<int64_t>(slices) * p.HV * p.N;
    const int64_t grid = std::min<int64_t>(items, static_cast<int64_t>(resident) * sm_count());
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = dim3(static_cast<unsigned>(grid));
    cfg.blockDim = dim3(WARPS * 32);
    cfg.dynamicSmemBytes = smem;
    cfg.stream = p.stream;
    cudaLaunchAttribute pdl[1];
    pdl[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    pdl[0].val.programmaticStreamSerializationAllowed = 1;
    cfg.attrs = pdl;
    cfg.numAttrs = pdl_enabled() ? 1 : 0;
    GDN2_CUDA_CHECK(cudaLaunchKernelEx(&cfg, kernel, p, slices, static_cast<int64_t>(items)));
  };
  if (p.K <= 32)
    go(std::integral_constant<int, 32>{});
  else if (p.K <= 64)
    go(std::integral_constant<int, 64>{});
  else if (p.K <= 128)
    go(std::integral_constant<int, 128>{});
  else if (p.K <= 256)
    go(std::integral_constant<int, 256>{});
  else
    GDN2_THROW(UnsupportedError, "CUDA GDN-2 recurrent kernel: K=", p.K, " above 256");
}

// GDN2_RECURRENT_SHAPE=<columns per lane><warps> (14, 18, 116, 24, 28, 48 or 416) forces a block shape, for tuning
// the choice below on a new GPU (gdn2 ops cuda-bench --decode-only times every batch).
template <typename S>
void launch_state(const Gdn2Params& p) {
  static const int shape = [] {  // read once, not at every decode step
    const char* e = std::getenv("GDN2_RECURRENT_SHAPE");
    return e != nullptr ? std::atoi(e) : 0;
  }();
  switch (shape) {
    case 14: return launch_shape<S, 1, 4>(p);
    case 18: return launch_shape<S, 1, 8>(p);
    case 116: return launch_shape<S, 1, 16>(p);
    case 24: return launch_shape<S, 2, 4>(p);
    case 28: return launch_shape<S, 2, 8>(p);
    case 48: return launch_shape<S, 4, 8>(p);
    case 416: return launch_shape<S, 4, 16>(p);
    default: break;
  }
  // Measured on the H100 (gdn2 ops cuda-bench --decode-only, K = V = 128): few heads (batch 1) want narrow blocks of
  // many warps; up to twice the SMs in 128-column blocks, 64 columns and 8 warps; beyond, 128 columns and 8 warps.
  auto blocks = [&](int cols) { return static_cast<int64_t>(p.N) * p.HV * ((p.V + cols - 1) / cols); };
  if (blocks(32) <= sm_count())
    launch_shape<S, 1, 16>(p);
  else if (blocks(128) < 2 * sm_count())
    launch_shape<S, 2, 8>(p);
  else
    launch_shape<S, 4, 8>(p);
}

}  // namespace

int sm_count() {
  static const int n = [] {
    int dev = 0, count = 0;
    cudaGetDevice(&dev);
    cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, dev);
    return count > 0 ? count : 132;
  }();
  return n;
}

void launch_recurrent(const Gdn2Params& p) {
  if (p.N == 0) return;
  GDN2_CHECK(p.state_type == ElemType::f32 || p.state_type == ElemType::bf16, UnsupportedError,
             "CUDA GDN-2 recurrent kernel: the state must be fp32 or bf16");
  if (p.state_type == ElemType::f32)
    launch_state<float>(p);
  else
    launch_state<__nv_bfloat16>(p);
  GDN2_CUDA_CHECK(cudaGetLastError());
}

}  // namespace gdn2::cuda
