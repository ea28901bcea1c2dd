// CUDA optimizer ops: the gradients' squared norm (one launch over every tensor, fixed-size chunks summed in a fixed
// order, no atomics) and the fused AdamW update that also scales the gradient (clipping) and writes the parameter's
// low-precision compute copy.
#include "cuda/optim.h"

#include <algorithm>
#include <cmath>

#include "cuda/common.cuh"
#include "cuda/stream.h"
#include "cuda/elem.h"
#include "cuda/gdn2/load.cuh"
#include "cuda/upload.h"

namespace gdn2::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int64_t kChunk = 32768;  // elements per partial sum: a fixed size, so the summation order never changes

// One tensor of a sum_squares call: its memory, element type, length and the index of its first chunk.
struct SquaresPart {
  const void* ptr;
  int64_t n;
  int64_t first_chunk;
  int type;
};

// The sum of the block's threads' values, added as a fixed tree in s (kThreads doubles); every thread gets it.
__device__ __forceinline__ double block_tree_sum(double x, double* s) {
  s[threadIdx.x] = x;
  __syncthreads();
  for (int w = kThreads / 2; w > 0; w /= 2) {
    if (threadIdx.x < w) s[threadIdx.x] += s[threadIdx.x + w];
    __syncthreads();
  }
  return s[0];
}

// The tensor of a one-launch table (ordered by first_chunk) that holds chunk c: a binary search.
template <class Part>
__device__ __forceinline__ int part_of_chunk(const Part* parts, int count, int64_t c) {
  int lo = 0, hi = count - 1;
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if (parts[mid].first_chunk <= c) lo = mid; else hi = mid - 1;
  }
  return lo;
}

// part[c] = Σ x² over chunk c of the concatenated tensors (blocks find their tensor by binary search), the block's
// threads added as a fixed tree; F32 chunks load four elements at a time.
__global__ void sum_squares_kernel(const SquaresPart* parts, int count, double* part) {
  __shared__ double s[kThreads];
  const int64_t c = blockIdx.x;
  const SquaresPart t = parts[part_of_chunk(parts, count, c)];
  const int64_t begin = (c - t.first_chunk) * kChunk, end = begin + kChunk < t.n ? begin + kChunk : t.n;
  const auto type = static_cast<ElemType>(t.type);
  double acc = 0;
  if (type == ElemType::f32 && (reinterpret_cast<uintptr_t>(t.ptr) & 15) == 0) {
    const float4* p = reinterpret_cast<const float4*>(static_cast<const float*>(t.ptr) + begin);
    const int64_t n4 = (end - begin) / 4;
    for (int64_t i = threadIdx.x; i < n4; i += kThreads) {
      const float4 e = p[i];
      const double x = e.x, y = e.y, z = e.z, w = e.w;
      acc += x * x + y * y + z * z + w * w;
    }
    for (int64_t i = begin + 4 * n4 + threadIdx.x; i < end; i += kThreads) {
      const float e = static_cast<const float*>(t.ptr)[i];
      acc += static_cast<double>(e) * e;
    }
  } else {
    for (int64_t i = begin + threadIdx.x; i < end; i += kThreads) {
      const float e = load_elem(t.ptr, type, i);
      acc += static_cast<double>(e) * e;
    }
  }
  const double total = block_tree_sum(acc, s);
  if (threadIdx.x == 0) part[c] = total;
}

// out[0] = Σ part, one block: thread i adds every kThreads-th part, then a fixed tree.
__global__ void sum_doubles_kernel(const double* part, int64_t n, double* out) {
  __shared__ double s[kThreads];
  double acc = 0;
  for (int64_t i = threadIdx.x; i < n; i += kThreads) acc += part[i];
  const double total = block_tree_sum(acc, s);
  if (threadIdx.x == 0) out[0] = total;
}

constexpr int64_t kAdamChunk = 8192;  // elements of one tensor an AdamW block updates

// One parameter of an adamw_update call: its memory, length, first chunk, weight decay, the compute copy's element
// type and whether every pointer allows 16-byte (compute: its 4-element) accesses.
struct AdamWPart {
  float* value;
  const float* grad;
  float* m;
  float* v;
  void* compute;
  int64_t n;
  int64_t first_chunk;
  float wd;
  int compute_type;
  int vec;
};

struct AdamWStep {
  float grad_scale, lr, beta1, beta2, eps, inv_c1, inv_sqrt_c2;
};

__device__ __forceinline__ float adamw_one(float& w, float g, float& m, float& v, float wd, const AdamWStep& h) {
  g *= h.grad_scale;
  m = h.beta1 * m + (1.f - h.beta1) * g;
  v = h.beta2 * v + (1.f - h.beta2) * g * g;
  w = w - h.lr * ((m * h.inv_c1) / (sqrtf(v) * h.inv_sqrt_c2 + h.eps) + wd * w);
  return w;
}

__device__ __forceinline__ void store4(void* p, ElemType t, int64_t i, float4 x) {
  if (t == ElemType::bf16) {
    __nv_bfloat162* q = reinterpret_cast<__nv_bfloat162*>(static_cast<__nv_bfloat16*>(p) + i);
    q[0] = __floats2bfloat162_rn(x.x, x.y);
    q[1] = __floats2bfloat162_rn(x.z, x.w);
  } else if (t == ElemType::f16) {
    __half2* q = reinterpret_cast<__half2*>(static_cast<__half*>(p) + i);
    q[0] = __floats2half2_rn(x.x, x.y);
    q[1] = __floats2half2_rn(x.z, x.w);
  } else {
    *reinterpret_cast<float4*>(static_cast<float*>(p) + i) = x;
  }
}

// Chunk blockIdx.x of the concatenated parameters (the block finds its tensor by binary search); four elements at
// a time where the part allows it.
__global__ void __launch_bounds__(kThreads) adamw_kernel(const AdamWPart* parts, int count, AdamWStep h) {
  const int64_t c = blockIdx.x;
  const AdamWPart t = parts[part_of_chunk(parts, count, c)];
  const int64_t begin = (c - t.first_chunk) * kAdamChunk, end = begin + kAdamChunk < t.n ? begin + kAdamChunk : t.n;
  const auto ct = static_cast<ElemType>(t.compute_type);
  int64_t tail = begin;
  if (t.vec) {
    const int64_t n4 = (end - begin) / 4;
    for (int64_t j = threadIdx.x; j < n4; j += kThreads) {
      const int64_t i = begin + 4 * j;
      float4 w = *reinterpret_cast<const float4*>(t.value + i);
      const float4 g = *reinterpret_cast<const float4*>(t.grad + i);
      float4 m = *reinterpret_cast<const float4*>(t.m + i), v = *reinterpret_cast<const float4*>(t.v + i);
      adamw_one(w.x, g.x, m.x, v.x, t.wd, h);
      adamw_one(w.y, g.y, m.y, v.y, t.wd, h);
      adamw_one(w.z, g.z, m.z, v.z, t.wd, h);
      adamw_one(w.w, g.w, m.w, v.w, t.wd, h);
      *reinterpret_cast<float4*>(t.value + i) = w;
      *reinterpret_cast<float4*>(t.m + i) = m;
      *reinterpret_cast<float4*>(t.v + i) = v;
      if (t.compute != nullptr) store4(t.compute, ct, i, w);
    }
    tail = begin + 4 * n4;
  }
  for (int64_t i = tail + threadIdx.x; i < end; i += kThreads) {
    float w = t.value[i], m = t.m[i], v = t.v[i];
    adamw_one(w, t.grad[i], m, v, t.wd, h);
    t.value[i] = w;
    t.m[i] = m;
    t.v[i] = v;
    if (t.compute != nullptr) store_elem(t.compute, ct, i, w);
  }
}

bool aligned(const void* p, uintptr_t bytes) { return (reinterpret_cast<uintptr_t>(p) % bytes) == 0; }

}  // namespace

double sum_squares(const std::vector<const Tensor*>& tensors) {
  std::vector<SquaresPart> parts;
  int64_t chunks = 0;
  for (const Tensor* t : tensors) {
    if (t->numel() == 0) continue;
    parts.push_back({t->raw(), t->numel(), chunks, static_cast<int>(elem_type(*t, "sum_squares", "tensor"))});
    chunks += (t->numel() + kChunk - 1) / kChunk;
  }
  if (parts.empty()) return 0;
  GDN2_CHECK(chunks < (int64_t{1} << 31), UnsupportedError, "sum_squares: ", chunks, " chunks are too many");
  const Tensor table = device_copy(parts);
  Tensor part = Tensor::empty({chunks + 1}, DType::f64, Device::cuda);
  auto* p = static_cast<double*>(part.raw_mut());
  sum_squares_kernel<<<static_cast<unsigned>(chunks), kThreads, 0, stream()>>>(
      static_cast<const SquaresPart*>(table.raw()), static_cast<int>(parts.size()), p);
  GDN2_CUDA_CHECK(cudaGetLastError());
  sum_doubles_kernel<<<1, kThreads, 0, stream()>>>(p, chunks, p + chunks);
  GDN2_CUDA_CHECK(cudaGetLastError());
  return part.slice0(chunks, chunks + 1).cpu().data<double>()[0];
}

void adamw_update(const std::vector<AdamWSlot>& slots, const AdamWHyper& h) {
  std::vector<AdamWPart> parts;
  int64_t chunks = 0;
  for (const AdamWSlot& s : slots) {
    const int64_t n = s.value->numel();
    if (n == 0) continue;
    AdamWPart p{static_cast<float*>(s.value->raw_mut()), static_cast<const float*>(s.grad->raw()),
                static_cast<float*>(s.m->raw_mut()), static_cast<float*>(s.v->raw_mut()),
                s.compute ? s.compute->raw_mut() : nullptr, n, chunks,
                static_cast<float>(s.decay ? h.weight_decay : 0.0),
                static_cast<int>(s.compute ? elem_type(*s.compute, "adamw", "compute") : ElemType::f32), 0};
    p.vec = aligned(p.value, 16) && aligned(p.grad, 16) && aligned(p.m, 16) && aligned(p.v, 16) &&
            (p.compute == nullptr || aligned(p.compute, 4 * static_cast<uintptr_t>(dtype_size(s.compute->dtype()))));
    parts.push_back(p);
    chunks += (n + kAdamChunk - 1) / kAdamChunk;
  }
  if (parts.empty()) return;
  GDN2_CHECK(chunks < (int64_t{1} << 31), UnsupportedError, "adamw_update: ", chunks, " chunks are too many");
  const Tensor table = device_copy(parts);
  const double c1 = 1 - std::pow(h.beta1, static_cast<double>(h.step));
  const double c2 = 1 - std::pow(h.beta2, static_cast<double>(h.step));
  const AdamWStep step{static_cast<float>(h.grad_scale), static_cast<float>(h.lr), static_cast<float>(h.beta1),
                       static_cast<float>(h.beta2), static_cast<float>(h.eps), static_cast<float>(1 / c1),
                       static_cast<float>(1 / std::sqrt(c2))};
  adamw_kernel<<<static_cast<unsigned>(chunks), kThreads, 0, stream()>>>(static_cast<const AdamWPart*>(table.raw()),
                                                                         static_cast<int>(parts.size()), step);
  GDN2_CUDA_CHECK(cudaGetLastError());
}

}  // namespace gdn2::cuda
