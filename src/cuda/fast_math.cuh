// One-instruction device math for kernels bound by their instruction stream: 2^x and 1/x on the MUFU unit, and the
// sigmoid built from them; and the sigmoid op's own formula, for the kernels that must match it.
#pragma once

namespace gdn2::cuda {

constexpr float kLog2e = 1.4426950408889634f;

// 2^x, one MUFU op (relative error ~2^-22; tiny results flush to 0). Kernels that keep their log-decays in log2 units
// take every exponential with it, without the range fix-ups of __expf and exp2f.
__device__ __forceinline__ float ex2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

// 1/x, one MUFU op (at most 1 ulp; 1/inf = 0).
__device__ __forceinline__ float rcp_approx(float x) {
  float y;
  asm("rcp.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

// 1 / (1 + e^-z) in four instructions, a few ulp; 0 for z -> -inf, 1 for z -> +inf.
__device__ __forceinline__ float sigmoid_approx(float z) { return rcp_approx(1.f + ex2(-kLog2e * z)); }

// The sigmoid op's formula (elementwise sigmoid, SiLU, SwiGLU), which kernels that apply a sigmoid on the way (the
// recurrent kernel's gate logits, the decode inputs' output gate) use too, so that they give the op's bits: 0 for
// x -> -inf.
__device__ __forceinline__ float sigmoid(float x) { return __frcp_rn(1.f + __expf(-x)); }

}  // namespace gdn2::cuda
