// CUDA attention forward: the op's entry (path choice, outputs) and the tensor-core kernel, FlashAttention-2 style.
// A block takes kM = 16·kWarps query rows of one (batch, query head), each warp 16 of them; it streams the keys its
// rows see through shared memory in tiles of kN (double-buffered by cp.async), forms S = Q Kᵀ and O += P V with
// mma.sync, and keeps an online softmax (running max m and sum l per row) in fp32. Tiles no row of a warp sees are
// skipped by that warp, and only tiles crossing the causal diagonal, the window's edge or the end of the keys are
// masked element by element.
#include <algorithm>

#include "cuda/stream.h"
#include "cuda/attention.h"
#include "cuda/attention_cudnn.h"
#include "cuda/attention_params.h"
#include "cuda/attention_tc.cuh"
#include "cuda/common.cuh"

namespace gdn2::cuda {

namespace {

using namespace attn;

template <int D>
struct FwdTile {
  static constexpr int kWarps = D <= 128 ? 8 : 4;
  static constexpr int kN = D <= 128 ? 64 : 32;  // keys per tile
  static constexpr int kM = 16 * kWarps;         // query rows per block
  static constexpr int kThreads = 32 * kWarps;
  static constexpr int kLd = D + 8;               // shared-memory row stride, elements
  static constexpr bool kQInRegs = D <= 128;      // the warp's Q fragments stay in registers
  // Q [kM][kLd], then K and V, each two buffers of [kN][kLd].
  template <class T>
  static constexpr size_t smem_bytes() {
    return static_cast<size_t>(kM + 4 * kN) * kLd * sizeof(T);
  }
};

template <class T, int D>
__global__ void __launch_bounds__(FwdTile<D>::kThreads) attention_fwd_tc_kernel(AttnParams a, T* __restrict__ o,
                                                                                float* __restrict__ lse) {
  using Tile = FwdTile<D>;
  constexpr int kM = Tile::kM, kN = Tile::kN, kLd = Tile::kLd, kThreads = Tile::kThreads;
  extern __shared__ uint4 attn_smem[];
  T* sQ = reinterpret_cast<T*>(attn_smem);
  T* sK = sQ + kM * kLd;
  T* sV = sK + 2 * kN * kLd;

  const int warp = static_cast<int>(threadIdx.x) / 32, lane = static_cast<int>(threadIdx.x) % 32;
  const int g = lane / 4, t = lane % 4;
  const int64_t b = blockIdx.z, h = blockIdx.y, hk = h / a.group(), off = a.offset();
  // Blocks run latest rows (most keys) first.
  const int64_t i0 = (ceil_div(a.Tq, kM) - 1 - blockIdx.x) * kM;
  const int64_t i_last = std::min<int64_t>(i0 + kM, a.Tq) - 1;
  // Keys some row of the block sees: [k_lo, k_hi], in tiles n_first .. n_last of kN keys.
  const int64_t k_lo = a.W > 0 ? std::max<int64_t>(0, off + i0 - a.W + 1) : 0, k_hi = off + i_last;
  const int64_t n_first = k_lo / kN, n_last = k_hi / kN;

  const int64_t q_stride = a.Hq * D, k_stride = a.Hkv * D;
  const T* qp = static_cast<const T*>(a.q) + (b * a.Tq * a.Hq + h) * D;
  const T* kp = static_cast<const T*>(a.k) + (b * a.Tk * a.Hkv + hk) * D;
  const T* vp = static_cast<const T*>(a.v) + (b * a.Tk * a.Hkv + hk) * D;
  auto load_kv = [&](int64_t n, int buf) {
    load_tile_async<T, kN, D, kLd, kThreads>(sK + buf * kN * kLd, kp, n * kN, a.Tk, k_stride);
    load_tile_async<T, kN, D, kLd, kThreads>(sV + buf * kN * kLd, vp, n * kN, a.Tk, k_stride);
  };
  load_tile_async<T, kM, D, kLd, kThreads>(sQ, qp, i0, a.Tq, q_stride);
  cp_async_commit();
  load_kv(n_first, 0);
  cp_async_commit();

  // The warp's rows i0 + r0 .. + 15; positions of its valid rows [wp0, wp1]; the thread's rows g and g + 8.
  const int r0 = 16 * warp;
  const int64_t wi0 = i0 + r0;
  const bool active = wi0 < a.Tq;
  const int64_t wp0 = off + wi0, wp1 = off + std::min<int64_t>(wi0 + 15, a.Tq - 1);
  const int64_t pos[2] = {wp0 + g, wp0 + g + 8};
  const float sl2 = a.scale * kLog2e;

  uint32_t qf[Tile::kQInRegs ? D / 16 : 1][4] = {};
  cp_async_wait<1>();  // Q has landed
  __syncthreads();
  if constexpr (Tile::kQInRegs) {
    if (active) {
#pragma unroll
      for (int kk = 0; kk < D / 16; ++kk) ldsm_a(qf[kk], sQ, kLd, r0, 16 * kk, lane);
    }
  }

  float acc[D / 8][4] = {};
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};  // running max (raw score) and this thread's part of Σ
  for (int64_t n = n_first; n <= n_last; ++n) {
    const int buf = static_cast<int>(n - n_first) & 1;
    if (n < n_last) load_kv(n + 1, buf ^ 1);  // the buffer the previous iteration read (all warps are past it)
    cp_async_commit();
    cp_async_wait<1>();  // every group but the one just committed: tile n has landed
    __syncthreads();
    const T* tk = sK + buf * kN * kLd;
    const T* tv = sV + buf * kN * kLd;
    const int64_t j0 = n * kN, j1 = j0 + kN - 1;
    if (active && span_any_visible(wp0, wp1, j0, j1, a.W)) {
      // S = Q Kᵀ (raw scores; the scale goes into the exponent).
      float s[kN / 8][4] = {};
#pragma unroll
      for (int kk = 0; kk < D / 16; ++kk) {
        if constexpr (Tile::kQInRegs) {
          mma_row_nk<T, kN>(s, qf[kk], tk, kLd, 16 * kk, lane);
        } else {
          uint32_t af[4];
          ldsm_a(af, sQ, kLd, r0, 16 * kk, lane);
          mma_row_nk<T, kN>(s, af, tk, kLd, 16 * kk, lane);
        }
      }
      if (!span_all_visible(wp0, wp1, j0, j1, a.W)) {
#pragma unroll
        for (int nt = 0; nt < kN / 8; ++nt)
#pragma unroll
          for (int e = 0; e < 4; ++e)
            if (!key_visible(pos[e >> 1], j0 + 8 * nt + 2 * t + (e & 1), a.W)) s[nt][e] = -INFINITY;
      }
      // Online softmax: new running max, rescale what has been summed, P = exp(scale·(S − m)).
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        float mx = m[r];
#pragma unroll
        for (int nt = 0; nt < kN / 8; ++nt) mx = fmaxf(mx, fmaxf(s[nt][2 * r], s[nt][2 * r + 1]));
        mx = quad_max(mx);
        const float shift = mx == -INFINITY ? 0.f : mx * sl2;            // no key seen yet: nothing to shift
        const float corr = m[r] == -INFINITY ? 0.f : exp2f(m[r] * sl2 - shift);  // l and acc are still 0 then
        m[r] = mx;
        l[r] *= corr;
#pragma unroll
        for (int dt = 0; dt < D / 8; ++dt) {
          acc[dt][2 * r] *= corr;
          acc[dt][2 * r + 1] *= corr;
        }
#pragma unroll
        for (int nt = 0; nt < kN / 8; ++nt)
#pragma unroll
          for (int e = 2 * r; e < 2 * r + 2; ++e) {
            const float x = s[nt][e];
            const float p = x == -INFINITY ? 0.f : exp2f(fmaf(x, sl2, -shift));
            s[nt][e] = p;
            l[r] += p;  // fp32 probabilities: lse stays fp32-accurate though P V takes them rounded to T
          }
      }
      // O += P V, P as A fragments straight from the score accumulators.
#pragma unroll
      for (int kk = 0; kk < kN / 16; ++kk) {
        uint32_t pa[4];
        acc_to_a<T>(pa, s[2 * kk], s[2 * kk + 1]);
        mma_row_kn<T, D>(acc, pa, tv, kLd, 16 * kk, lane);
      }
    }
    __syncthreads();  // every warp is done with buffer buf before the next iteration refills it
  }

  if (!active) return;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const float sum = quad_sum(l[r]);
    const int64_t i = wi0 + g + 8 * r;
    if (i >= a.Tq) continue;
    const float inv = sum > 0.f ? 1.f / sum : 0.f;  // every valid row sees its own key: sum >= 1
    T* orow = o + ((b * a.Tq + i) * a.Hq + h) * D;
#pragma unroll
    for (int dt = 0; dt < D / 8; ++dt) store2(orow + 8 * dt + 2 * t, acc[dt][2 * r] * inv, acc[dt][2 * r + 1] * inv);
    if (t == 0) lse[(b * a.Hq + h) * a.Tq + i] = m[r] * a.scale + logf(sum);
  }
}

template <class T, int D>
void launch_fwd(const AttnParams& a, void* o, float* lse) {
  using Tile = FwdTile<D>;
  const dim3 grid(static_cast<unsigned>(ceil_div(a.Tq, Tile::kM)), static_cast<unsigned>(a.Hq),
                  static_cast<unsigned>(a.B));
  launch_with_smem(attention_fwd_tc_kernel<T, D>, grid, Tile::kThreads, Tile::template smem_bytes<T>(), stream(), a,
                   static_cast<T*>(o), lse);
}

template <class T>
void launch_fwd_dim(const AttnParams& a, void* o, float* lse) {
  switch (a.D) {
    case 64: launch_fwd<T, 64>(a, o, lse); break;
    case 128: launch_fwd<T, 128>(a, o, lse); break;
    case 256: launch_fwd<T, 256>(a, o, lse); break;
    default: GDN2_THROW(UnsupportedError, "attention_forward on CUDA: no tensor-core kernel for head dim ", a.D);
  }
}

}  // namespace

void attention_tc_forward(const AttnParams& a, void* o, float* lse) {
  if (a.t == ElemType::bf16)
    launch_fwd_dim<__nv_bfloat16>(a, o, lse);
  else
    launch_fwd_dim<__half>(a, o, lse);
}

AttentionResult attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, double scale, int64_t window,
                                  bool repeated_shape) {
  const AttnParams a = attn_params(q, k, v, scale, window, "attention_forward");
  AttentionResult r;
  r.o = Tensor::empty(q.shape(), q.dtype(), Device::cuda);
  r.lse = Tensor::empty({a.B, a.Hq, a.Tq}, DType::f32, Device::cuda);
  if (a.B * a.Tq == 0) return r;
  float* lse = static_cast<float*>(r.lse.raw_mut());
  if (repeated_shape && cudnn_attention_forward(a, r.o.raw_mut(), lse)) return r;
  if (attn_tensor_cores(a, false, {a.q, a.k, a.v, r.o.raw()}))
    attention_tc_forward(a, r.o.raw_mut(), lse);
  else
    attention_rows_forward(a, r.o.raw_mut(), lse);
  return r;
}

}  // namespace gdn2::cuda
