// The plain parameter block of the CUDA GDN-2 kernels: raw device pointers, element strides, dtypes, gate forms.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace gdn2::cuda {

enum class ElemType : int32_t { f32 = 0, f16 = 1, bf16 = 2 };
enum class Gate : int32_t { channel = 0, head = 1, absent = 2 };

// One input of [tokens, heads, dim] (channel) or [tokens, heads] (head) with explicit element strides.
struct InputView {
  const void* ptr = nullptr;
  ElemType type = ElemType::f32;
  int64_t stride_token = 0, stride_head = 0;  // elements
  int32_t heads = 0;                          // heads of this input (H or HV)
  Gate form = Gate::channel;
};

struct Gdn2Params {
  int32_t N = 0, H = 0, HV = 0, K = 0, V = 0;
  const int64_t* seq_offsets = nullptr;  // device, [N + 1] flat token offsets; null: sequence n is [n·T, (n+1)·T)
  int64_t T = 0;
  InputView q, k, v, g, b, w;
  // In-kernel decay gate: when a_log is set, g holds f and the kernel forms g = -exp(A_log[h]) softplus(f + dt_bias).
  const float* a_log = nullptr;   // [gate heads]
  const float* dt_bias = nullptr; // [gate heads * K] (or [gate heads] for per-head gates); may be null
  // State: h0 (may be null: zeros) and ht (may be null: not written), [N, HV, K, V]; fp32 or bf16.
  const void* h0 = nullptr;
  void* ht = nullptr;
  ElemType state_type = ElemType::f32;
  // Output o [tokens, HV, V] contiguous.
  void* o = nullptr;
  ElemType o_type = ElemType::f32;
  float scale = 1.f;
  bool l2norm = false;
  cudaStream_t stream = nullptr;
};

}  // namespace gdn2::cuda
