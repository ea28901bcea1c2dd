// A decode step's attention inputs in one launch (include/gdn2/ops/attention.h attention_decode_inputs): one warp per
// head row of q, k, v or the output gate (token n, head h), read from the fused projection's row n. A q or k row is
// RMS-normed over D as the norm kernel does (y = x · rstd · w, rounded to the element type), then rotated by RoPE at
// the token's position as the rope kernel does (cos and sin in double, the rotation in fp32, rounded again); k and v
// rows go into the caches at that position (a position outside [0, L) writes nothing, as kv_cache_write), q rows into
// the result; a gate row's sigmoid (as the sigmoid op) into the gate.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "cuda/attention.h"
#include "cuda/common.cuh"
#include "cuda/elem.h"
#include "cuda/fast_math.cuh"
#include "cuda/gdn2/load.cuh"
#include "cuda/stream.h"

namespace gdn2::cuda {

namespace {

constexpr int kWarps = 4;
constexpr int kMaxD = 256;           // head dim at most: kMaxD / 32 values a lane
constexpr int kPer = kMaxD / 32;

struct InputsArgs {
  const void* qkv;                             // [N, (2 Hq + 2 Hkv) D]: per head q | gate, then k, then v
  const void *qw, *kw;                         // [D] norm weights
  void *q_out, *gate_out, *k_cache, *v_cache;  // [N, Hq, D] twice, [S, L, Hkv, D] twice
  const int32_t* pos;             // [N]
  ElemType t, wt;
  int64_t N, L;
  int Hq, Hkv, D, rd;
  float eps;
  bool zero_centred;
  double theta;
};

__device__ __forceinline__ float round_to(ElemType t, float x) {
  switch (t) {
    case ElemType::bf16: return __bfloat162float(__float2bfloat16_rn(x));
    case ElemType::f16: return __half2float(__float2half_rn(x));
    default: return x;
  }
}

__global__ void __launch_bounds__(kWarps * 32) decode_inputs_kernel(InputsArgs a) {
  __shared__ float rows[kWarps][kMaxD];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int heads = 2 * a.Hq + 2 * a.Hkv;  // row kinds by h: q, k, v, gate
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kWarps + warp;  // token * heads + head
  if (row >= a.N * heads) return;
  const int64_t n = row / heads;
  const int h = static_cast<int>(row % heads);
  const bool is_q = h < a.Hq, is_k = !is_q && h < a.Hq + a.Hkv, is_v = !is_q && !is_k && h < a.Hq + 2 * a.Hkv;
  const bool is_gate = h >= a.Hq + 2 * a.Hkv;
  const int hk = is_q ? h : is_k ? h - a.Hq : is_v ? h - a.Hq - a.Hkv : h - a.Hq - 2 * a.Hkv;  // head within its kind
  const int64_t in_row = n * heads * a.D;  // the projection's row n
  const int64_t src = is_q      ? in_row + 2 * hk * a.D
                      : is_gate ? in_row + (2 * hk + 1) * a.D
                      : is_k    ? in_row + (2 * a.Hq + hk) * a.D
                                : in_row + (2 * a.Hq + a.Hkv + hk) * a.D;
  const void* x = a.qkv;
  if (is_gate) {  // the output gate's sigmoid, as the sigmoid op
    const int64_t at = (n * a.Hq + hk) * a.D;
    for (int d = lane; d < a.D; d += 32)
      store_elem(a.gate_out, a.t, at + d, sigmoid(load_elem(x, a.t, src + d)));
    return;
  }
  const int64_t p = a.pos[n];
  const bool in_cache = p >= 0 && p < a.L;
  const int64_t dst = ((n * a.L + p) * a.Hkv + hk) * a.D;  // the cache row (k and v)
  if (is_v) {
    if (in_cache)
      for (int d = lane; d < a.D; d += 32) store_elem(a.v_cache, a.t, dst + d, load_elem(x, a.t, src + d));
    return;
  }
  // RMS norm: the row's loads first, then the sum of squares across the warp.
  float v[kPer];
  float ss = 0.f;
#pragma unroll
  for (int j = 0; j < kPer; ++j) {
    const int d = lane + 32 * j;
    v[j] = d < a.D ? load_elem(x, a.t, src + d) : 0.f;
    ss += v[j] * v[j];
  }
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
  const float r = 1.f / sqrtf(ss / static_cast<float>(a.D) + a.eps);
  const void* w = is_q ? a.qw : a.kw;
#pragma unroll
  for (int j = 0; j < kPer; ++j) {
    const int d = lane + 32 * j;
    if (d < a.D) {
      float wd = w != nullptr ? load_elem(w, a.wt, d) : 1.f;
      if (w != nullptr && a.zero_centred) wd += 1.f;
      rows[warp][d] = round_to(a.t, v[j] * r * wd);  // the norm's output as stored
    }
  }
  __syncwarp();
  // RoPE on the first rd features: pair (i, i + rd/2) at angle p · theta^(−2i / rd).
  const int half = a.rd / 2;
  void* out = is_q ? a.q_out : a.k_cache;
  const int64_t base = is_q ? (n * a.Hq + hk) * a.D : dst;
  if (!is_q && !in_cache) return;
  for (int d = lane; d < a.D; d += 32) {
    float y = rows[warp][d];
    if (d < a.rd) {
      const int i = d < half ? d : d - half;
      const double angle = static_cast<double>(p) * pow(a.theta, -static_cast<double>(2 * i) / static_cast<double>(a.rd));
      double s, c;
      sincos(angle, &s, &c);
      const float cf = static_cast<float>(c), sf = static_cast<float>(s);
      const float x1 = rows[warp][i], x2 = rows[warp][i + half];
      y = d < half ? x1 * cf - x2 * sf : x2 * cf + x1 * sf;
    }
    store_elem(out, a.t, base + d, y);
  }
}

}  // namespace

AttentionDecodeInputs attention_decode_inputs(const Tensor& qkv, int64_t Hq, int64_t Hkv, const Tensor& q_weight,
                                              const Tensor& k_weight, double eps, bool zero_centred, double theta,
                                              int64_t rotary_dim, Tensor& k_cache, Tensor& v_cache,
                                              const Tensor& positions) {
  const char* op = "attention_decode_inputs";
  const int64_t N = qkv.size(0), D = qkv.size(1) / (2 * Hq + 2 * Hkv);
  GDN2_CHECK(D <= kMaxD, UnsupportedError, op, " on CUDA: head dim ", D, " above ", kMaxD);
  AttentionDecodeInputs r{Tensor::empty({N, Hq, D}, qkv.dtype(), Device::cuda),
                          Tensor::empty({N, Hq, D}, qkv.dtype(), Device::cuda)};
  InputsArgs a{};
  a.qkv = qkv.raw();
  a.qw = q_weight.defined() ? q_weight.raw() : nullptr;
  a.kw = k_weight.defined() ? k_weight.raw() : nullptr;
  a.wt = q_weight.defined()   ? elem_type(q_weight, op, "q_weight")
         : k_weight.defined() ? elem_type(k_weight, op, "k_weight")
                              : ElemType::f32;
  a.q_out = r.q.raw_mut(), a.gate_out = r.gate.raw_mut(), a.k_cache = k_cache.raw_mut(), a.v_cache = v_cache.raw_mut();
  a.pos = static_cast<const int32_t*>(positions.raw());
  a.t = elem_type(qkv, op, "qkv");
  a.N = N, a.L = k_cache.size(1);
  a.Hq = static_cast<int>(Hq), a.Hkv = static_cast<int>(Hkv), a.D = static_cast<int>(D);
  a.rd = static_cast<int>(rotary_dim);
  a.eps = static_cast<float>(eps);
  a.zero_centred = zero_centred;
  a.theta = theta;
  const int64_t rows = N * (2 * Hq + 2 * Hkv);
  if (rows == 0) return r;
  const int64_t blocks = (rows + kWarps - 1) / kWarps;
  GDN2_CHECK(blocks < (int64_t{1} << 31), UnsupportedError, op, " on CUDA: ", rows, " rows");
  decode_inputs_kernel<<<static_cast<unsigned>(blocks), kWarps * 32, 0, stream()>>>(a);
  GDN2_CUDA_CHECK(cudaGetLastError());
  return r;
}

}  // namespace gdn2::cuda
