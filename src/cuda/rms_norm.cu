// CUDA gated RMSNorm: one warp per row; the backward writes each row's weight-gradient terms and sums them over the
// rows in a fixed order (column_sum).
#include "cuda/common.cuh"
#include "cuda/elem.h"
#include "cuda/gdn2/load.cuh"
#include "cuda/model_ops.h"

namespace gdn2::cuda {

namespace {

constexpr int kWarps = 8;

struct NormArgs {
  const void* x;
  const void* gate;
  const void* weight;  // null: 1
  ElemType t, wt;
  int64_t rows, D;
  bool zero_centred, silu;  // gate activation: silu, else sigmoid
};

__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o /= 2) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ __forceinline__ float weight_at(const NormArgs& a, int64_t d) {
  if (a.weight == nullptr) return 1.f;
  const float w = load_elem(a.weight, a.wt, d);
  return a.zero_centred ? 1.f + w : w;
}

// act(g) and its derivative.
__device__ __forceinline__ void gate_act(const NormArgs& a, float g, float& act, float& dact) {
  const float s = 1.f / (1.f + __expf(-g));
  if (a.silu) {
    act = g * s;
    dact = s * (1.f + g * (1.f - s));
  } else {
    act = s;
    dact = s * (1.f - s);
  }
}

__global__ void rms_forward_kernel(NormArgs a, float eps, void* y, float* rstd) {
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kWarps + threadIdx.x / 32;
  const int lane = threadIdx.x & 31;
  if (row >= a.rows) return;
  const int64_t base = row * a.D;
  float ss = 0.f;
  for (int64_t d = lane; d < a.D; d += 32) {
    const float v = load_elem(a.x, a.t, base + d);
    ss += v * v;
  }
  const float r = rsqrtf(warp_sum(ss) / static_cast<float>(a.D) + eps);
  if (lane == 0) rstd[row] = r;
  for (int64_t d = lane; d < a.D; d += 32) {
    float v = load_elem(a.x, a.t, base + d) * r * weight_at(a, d);
    if (a.gate != nullptr) {
      float act, dact;
      gate_act(a, load_elem(a.gate, a.t, base + d), act, dact);
      v *= act;
    }
    store_elem(y, a.t, base + d, v);
  }
}

// y = x r c with c = w' act(g): dx = r u − (r³ / D) x Σ u x for u = dy c; dgate = dy x r w' act'(g);
// dw_row = dy x r act(g) (written per row when dw_rows is not null).
__global__ void rms_backward_kernel(NormArgs a, const void* dy, const float* rstd, void* dx, void* dgate,
                                    float* dw_rows) {
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kWarps + threadIdx.x / 32;
  const int lane = threadIdx.x & 31;
  if (row >= a.rows) return;
  const int64_t base = row * a.D;
  const float r = rstd[row];
  float dot = 0.f;
  for (int64_t d = lane; d < a.D; d += 32) {
    float act = 1.f, dact = 0.f;
    if (a.gate != nullptr) gate_act(a, load_elem(a.gate, a.t, base + d), act, dact);
    const float u = load_elem(dy, a.t, base + d) * weight_at(a, d) * act;
    dot += u * load_elem(a.x, a.t, base + d);
  }
  dot = warp_sum(dot);
  const float k = r * r * r * dot / static_cast<float>(a.D);
  for (int64_t d = lane; d < a.D; d += 32) {
    float act = 1.f, dact = 0.f;
    if (a.gate != nullptr) gate_act(a, load_elem(a.gate, a.t, base + d), act, dact);
    const float g = load_elem(dy, a.t, base + d), x = load_elem(a.x, a.t, base + d), w = weight_at(a, d);
    store_elem(dx, a.t, base + d, r * g * w * act - k * x);
    if (dgate != nullptr) store_elem(dgate, a.t, base + d, g * x * r * w * dact);
    if (dw_rows != nullptr) dw_rows[base + d] = g * x * r * act;
  }
}

NormArgs args(const Tensor& x, const Tensor& weight, const Tensor& gate, const RmsNormOptions& o, int64_t rows,
              int64_t D) {
  NormArgs a{};
  a.x = x.raw();
  a.gate = gate.defined() ? gate.raw() : nullptr;
  a.weight = weight.defined() ? weight.raw() : nullptr;
  a.t = elem_type(x, "rms_norm", "x");
  a.wt = weight.defined() ? elem_type(weight, "rms_norm", "weight") : ElemType::f32;
  a.rows = rows;
  a.D = D;
  a.zero_centred = o.zero_centred;
  a.silu = o.gate_activation == NormGateActivation::silu;
  return a;
}

unsigned blocks(int64_t rows) { return static_cast<unsigned>((rows + kWarps - 1) / kWarps); }

}  // namespace

RmsNormResult rms_norm_forward(const Tensor& x, const Tensor& weight, const Tensor& gate, const RmsNormOptions& o,
                               int64_t rows, int64_t D) {
  RmsNormResult r;
  r.y = Tensor::empty(x.shape(), x.dtype(), Device::cuda);
  Shape s = x.shape();
  s.pop_back();
  r.rstd = Tensor::empty(s, DType::f32, Device::cuda);
  if (rows == 0) return r;
  rms_forward_kernel<<<blocks(rows), kWarps * 32>>>(args(x, weight, gate, o, rows, D), static_cast<float>(o.eps),
                                                    r.y.raw_mut(), static_cast<float*>(r.rstd.raw_mut()));
  GDN2_CUDA_CHECK(cudaGetLastError());
  return r;
}

RmsNormGrads rms_norm_backward(const Tensor& dy, const Tensor& x, const Tensor& rstd, const Tensor& weight,
                               const Tensor& gate, const RmsNormOptions& o, int64_t rows, int64_t D) {
  RmsNormGrads g;
  g.dx = Tensor::empty(x.shape(), x.dtype(), Device::cuda);
  if (gate.defined()) g.dgate = Tensor::empty(gate.shape(), gate.dtype(), Device::cuda);
  Tensor dw_rows = weight.defined() && rows > 0 ? Tensor::empty({rows, D}, DType::f32, Device::cuda) : Tensor();
  if (rows > 0) {
    rms_backward_kernel<<<blocks(rows), kWarps * 32>>>(
        args(x, weight, gate, o, rows, D), dy.raw(), static_cast<const float*>(rstd.raw()), g.dx.raw_mut(),
        gate.defined() ? g.dgate.raw_mut() : nullptr, dw_rows.defined() ? static_cast<float*>(dw_rows.raw_mut()) : nullptr);
    GDN2_CUDA_CHECK(cudaGetLastError());
  }
  if (weight.defined()) g.dweight = column_sum(dw_rows.defined() ? dw_rows : Tensor::zeros({1}, DType::f32, Device::cuda), rows, D);
  return g;
}

}  // namespace gdn2::cuda
