// Internal to the CUDA attention backend (src/cuda/attention_*.cu): the kernels' plain parameter block, the choice
// between the tensor-core path and the general path, and the launchers each file provides to the others.
#pragma once

#include <cstdint>
#include <initializer_list>

#include "cuda/elem.h"
#include "cuda/gdn2/params.h"

namespace gdn2::cuda {

// Raw device pointers and sizes of one attention call. q, o, d_o are [B, Tq, Hq, D], k, v [B, Tk, Hkv, D], all of
// element type t; lse and delta are F32 [B, Hq, Tq]. The backward fills o, d_o, lse and delta.
struct AttnParams {
  const void *q = nullptr, *k = nullptr, *v = nullptr, *o = nullptr, *d_o = nullptr;
  const float *lse = nullptr, *delta = nullptr;
  ElemType t = ElemType::f32;
  int64_t B = 0, Tq = 0, Tk = 0, Hq = 0, Hkv = 0, D = 0, W = 0;
  float scale = 1.f;
  // Absolute position of query row 0 (the queries are the last Tq of the Tk positions).
  __host__ __device__ int64_t offset() const { return Tk - Tq; }
  __host__ __device__ int64_t group() const { return Hq / Hkv; }
};

inline AttnParams attn_params(const Tensor& q, const Tensor& k, const Tensor& v, double scale, int64_t window,
                              const char* op) {
  AttnParams a;
  a.q = q.raw();
  a.k = k.raw();
  a.v = v.raw();
  a.t = elem_type(q, op, "q");
  a.B = q.size(0);
  a.Tq = q.size(1);
  a.Hq = q.size(2);
  a.D = q.size(3);
  a.Tk = k.size(1);
  a.Hkv = k.size(2);
  a.W = window;
  a.scale = static_cast<float>(scale);
  // The kernels put heads on grid.y and batches on grid.z.
  GDN2_CHECK(a.B <= 65535 && a.Hq <= 65535, UnsupportedError, op,
             " on CUDA: at most 65535 batches and query heads, got ", q.describe());
  return a;
}

// The tensor-core path takes BF16/F16 with a head dim it is built for (64, 128; the forward also 256) and 16-byte
// aligned tensors (its tiles are copied in 16-byte pieces; every row then starts aligned since D·2 is a multiple of
// 16). Everything else takes the general path.
inline bool attn_tensor_cores(const AttnParams& a, bool backward, std::initializer_list<const void*> ptrs) {
  if (a.t == ElemType::f32) return false;
  if (a.D != 64 && a.D != 128 && (backward || a.D != 256)) return false;
  for (const void* p : ptrs)
    if (reinterpret_cast<uintptr_t>(p) % 16 != 0) return false;
  return true;
}

// Tensor-core path (attention_fwd.cu, attention_bwd_dq.cu, attention_bwd_dkdv.cu): a.t BF16 or F16, a.D as
// attn_tensor_cores allows; o, dq, dk, dv of element type a.t.
void attention_tc_forward(const AttnParams& a, void* o, float* lse);
void attention_tc_dq(const AttnParams& a, void* dq);
void attention_tc_dkdv(const AttnParams& a, void* dk, void* dv);

// General path (attention_rows.cu): any element type and D <= kAttentionMaxHeadDim, fp32 on CUDA cores.
void attention_rows_forward(const AttnParams& a, void* o, float* lse);
void attention_rows_dq(const AttnParams& a, void* dq);
void attention_rows_dkdv(const AttnParams& a, void* dk, void* dv);

}  // namespace gdn2::cuda
