// CUDA fused LM-head cross-entropy (cross_entropy.h): row blocks of logits from cuBLASLt, one block per row for an
// online max / sum of exponentials, the row loss and the softmax gradient, then the two gradient products.
#include "cuda/cross_entropy.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "cuda/common.cuh"
#include "cuda/stream.h"
#include "cuda/elem.h"
#include "cuda/gdn2/load.cuh"
#include "cuda/gemm.h"

namespace gdn2::cuda {

namespace {

constexpr int64_t kLogitsBlock = int64_t{1} << 26;  // F32 logits per row block: 256 MB

// (m, s) ⊕ (m2, s2): running maxima and sums of exp(x - max), merged; (-inf, 0) is the empty set.
__device__ __forceinline__ void merge(float& m, float& s, float m2, float s2) {
  const float M = fmaxf(m, m2);
  if (M == -INFINITY) return;
  s = s * __expf(m - M) + s2 * __expf(m2 - M);
  m = M;
}

// The block's (max, sum) from every thread's, in a fixed order (warp butterflies, then the warps' in warp order);
// blockDim.x a multiple of 32.
__device__ void block_merge(float& m, float& s) {
  __shared__ float part_m[32], part_s[32];
  for (int o = 16; o > 0; o /= 2) merge(m, s, __shfl_xor_sync(0xffffffffu, m, o), __shfl_xor_sync(0xffffffffu, s, o));
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, warps = blockDim.x / 32;
  if (lane == 0) part_m[warp] = m, part_s[warp] = s;
  __syncthreads();
  if (warp == 0) {
    m = lane < warps ? part_m[lane] : -INFINITY;
    s = lane < warps ? part_s[lane] : 0.f;
    for (int o = 16; o > 0; o /= 2)
      merge(m, s, __shfl_xor_sync(0xffffffffu, m, o), __shfl_xor_sync(0xffffffffu, s, o));
    if (lane == 0) part_m[0] = m, part_s[0] = s;
  }
  __syncthreads();
  m = part_m[0];
  s = part_s[0];
}

// Block r: row r of logits [rows, V] (F32). loss[r] = logsumexp - logit[target]; with dl, dl[r, v] =
// scale · (softmax_v - [v == target]) in element type dl_type. dl may be the logits themselves (F32): every element is
// read, then written, by one thread, and the target's logit is read before the first write. Ignored rows
// (target < 0): loss 0 and a zero dl row.
__global__ void softmax_xent_kernel(const float* logits, const int32_t* targets, int64_t V, float scale, float* loss,
                                    void* dl, ElemType dl_type) {
  const int64_t r = blockIdx.x;
  const float* x = logits + r * V;
  const int32_t target = targets[r];
  if (target < 0) {
    if (threadIdx.x == 0) loss[r] = 0.f;
    if (dl != nullptr)
      for (int64_t v = threadIdx.x; v < V; v += blockDim.x) store_elem(dl, dl_type, r * V + v, 0.f);
    return;
  }
  const float x_target = x[target];
  float m = -INFINITY, s = 0.f;
  for (int64_t v = threadIdx.x; v < V; v += blockDim.x) {
    const float z = x[v];
    if (z > m) {
      s = s * __expf(m - z) + 1.f;
      m = z;
    } else {
      s += __expf(z - m);
    }
  }
  block_merge(m, s);  // synchronises the block: every read above precedes every write below
  const float lse = m + logf(s);
  if (threadIdx.x == 0) loss[r] = lse - x_target;
  if (dl == nullptr) return;
  for (int64_t v = threadIdx.x; v < V; v += blockDim.x)
    store_elem(dl, dl_type, r * V + v, scale * (__expf(x[v] - lse) - (v == target ? 1.f : 0.f)));
}

// Rows per block: the F32 logits block within kLogitsBlock elements, rounded down to a multiple of the rows that
// span 256 bytes of h (row_bytes per row) so that every block of h and dh starts as aligned as h (cuBLASLt's
// heuristics assume 256-byte aligned operands); at least that multiple, and at most N.
int64_t automatic_rows(int64_t N, int64_t row_bytes, int64_t V) {
  const int64_t align = 256 / std::gcd<int64_t>(row_bytes, 256);
  const int64_t rows = std::max<int64_t>(kLogitsBlock / V / align, 1) * align;
  return std::min(rows, N);
}

}  // namespace

LmLoss lm_head_loss(const Tensor& h, const Tensor& W, const Tensor& targets, int64_t count, bool want_grad, Tensor* dW,
                    double grad_scale, int64_t rows_per_block) {
  const char* op = "lm_head_cross_entropy";
  const int64_t N = h.size(0), D = h.size(1), V = W.size(0);
  LmLoss r;
  r.count = count;
  if (want_grad)  // every row block's product overwrites its rows of dh
    r.dh = count == 0 ? Tensor::zeros({N, D}, h.dtype(), Device::cuda) : Tensor::empty({N, D}, h.dtype(), Device::cuda);
  if (count == 0) return r;
  const cudaDataType_t t = gemm_type(h, op, "h");
  const size_t e = dtype_size(h.dtype());
  const Tensor dev_targets = targets.is_cpu() ? targets.to(Device::cuda) : targets;
  const int64_t rb = rows_per_block > 0 ? std::min(rows_per_block, N) : automatic_rows(N, D * static_cast<int64_t>(e), V);
  Tensor logits = Tensor::empty({rb, V}, DType::f32, Device::cuda);
  // dlogits in W's dtype: in place over the logits for F32, else a buffer of its own.
  Tensor dl;
  if (want_grad) dl = h.dtype() == DType::f32 ? logits : Tensor::empty({rb, V}, h.dtype(), Device::cuda);
  Tensor loss = Tensor::empty({N}, DType::f32, Device::cuda);
  const float scale = static_cast<float>(grad_scale / static_cast<double>(count));
  const ElemType dl_type = elem_type(h, op, "h");
  const int threads = static_cast<int>(std::clamp<int64_t>((V / 8 + 31) / 32 * 32, 32, 1024));
  for (int64_t r0 = 0; r0 < N; r0 += rb) {
    const int64_t n = std::min(rb, N - r0);
    const void* hb = static_cast<const char*>(h.raw()) + static_cast<size_t>(r0 * D) * e;
    // logits^T [V, n] = W [V, D] · h_blk^T (column-major views of the row-major tensors, as in the linear layer).
    gemm(V, n, D, {W.raw(), t, D, true}, {hb, t, D, false}, 0.f, logits.raw_mut(), CUDA_R_32F, V, nullptr);
    softmax_xent_kernel<<<static_cast<unsigned>(n), threads, 0, stream()>>>(
        static_cast<const float*>(logits.raw()), static_cast<const int32_t*>(dev_targets.raw()) + r0, V, scale,
        static_cast<float*>(loss.raw_mut()) + r0, want_grad ? dl.raw_mut() : nullptr, dl_type);
    GDN2_CUDA_CHECK(cudaGetLastError());
    if (!want_grad) continue;
    // dh_blk^T [D, n] = W^T [D, V] · dl^T [V, n].
    gemm(D, n, V, {W.raw(), t, D, false}, {dl.raw(), t, V, false}, 0.f,
         static_cast<char*>(r.dh.raw_mut()) + static_cast<size_t>(r0 * D) * e, t, D, nullptr);
    if (dW != nullptr)  // dW^T [D, V] += h_blk^T [D, n] · dl [n, V]
      gemm(D, V, n, {hb, t, D, false}, {dl.raw(), t, V, true}, 1.f, dW->raw_mut(), gemm_type(*dW, op, "dW"), D,
           nullptr);
  }
  const Tensor row_loss = loss.cpu();  // waits for the last block
  const float* l = row_loss.data<float>();
  double total = 0;
  for (int64_t i = 0; i < N; ++i) total += l[i];
  r.loss = total / static_cast<double>(count);
  return r;
}

}  // namespace gdn2::cuda
