// CUDA token ops: embedding lookup and its scatter-add backward (rows grouped by id on the host, summed in row
// order), the fused chunked LM-head cross-entropy (cuBLASLt products around a row softmax kernel), and the fixed-order
// column sum that parameter gradients use.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "cuda/common.cuh"
#include "cuda/elem.h"
#include "cuda/gdn2/load.cuh"
#include "cuda/gemm.h"
#include "cuda/model_ops.h"

namespace gdn2::cuda {

namespace {

// ids as I32 on the host.
std::vector<int32_t> host_ids(const Tensor& ids) {
  const Tensor c = ids.cpu();
  std::vector<int32_t> v(static_cast<size_t>(c.numel()));
  if (c.dtype() == DType::i32)
    std::copy(c.data<int32_t>(), c.data<int32_t>() + c.numel(), v.begin());
  else
    for (int64_t i = 0; i < c.numel(); ++i) v[static_cast<size_t>(i)] = static_cast<int32_t>(c.data<int64_t>()[i]);
  return v;
}

Tensor upload(const std::vector<int32_t>& v) {
  return Tensor::from_vector<int32_t>({static_cast<int64_t>(v.size())}, v).to(Device::cuda);
}

__global__ void embedding_kernel(const int32_t* ids, const void* table, ElemType t, int64_t D, void* y) {
  const int64_t row = blockIdx.x, src = static_cast<int64_t>(ids[row]) * D;
  for (int64_t d = threadIdx.x; d < D; d += blockDim.x) store_elem(y, t, row * D + d, load_elem(table, t, src + d));
}

// Block u adds the rows order[start[u] .. start[u + 1]) of dy, in that order, into dtable row uniq[u].
__global__ void embedding_backward_kernel(const void* dy, ElemType t, const int32_t* order, const int32_t* start,
                                          const int32_t* uniq, int64_t D, float* dtable) {
  const int u = blockIdx.x;
  const int64_t d = static_cast<int64_t>(blockIdx.y) * blockDim.x + threadIdx.x;
  if (d >= D) return;
  float acc = 0.f;
  for (int r = start[u]; r < start[u + 1]; ++r) acc += load_elem(dy, t, static_cast<int64_t>(order[r]) * D + d);
  dtable[static_cast<int64_t>(uniq[u]) * D + d] += acc;
}

// Row r of logits [rows, V] (F32): loss[r] = logsumexp − logit[target] (0 for an ignored row); with dl, the row's
// gradient (softmax − onehot) · scale (0 for an ignored row) in dl's dtype.
__global__ void softmax_xent_kernel(const float* logits, const int32_t* targets, int64_t V, float scale, float* loss,
                                    void* dl, ElemType dl_type) {
  const int64_t r = blockIdx.x;
  const float* x = logits + r * V;
  const int target = targets[r];
  __shared__ float red[32];
  auto block_reduce = [&](float v, bool is_max) {
    for (int o = 16; o > 0; o /= 2) {
      const float w = __shfl_xor_sync(0xffffffffu, v, o);
      v = is_max ? fmaxf(v, w) : v + w;
    }
    if ((threadIdx.x & 31) == 0) red[threadIdx.x / 32] = v;
    __syncthreads();
    const int warps = blockDim.x / 32;
    v = threadIdx.x < warps ? red[threadIdx.x] : (is_max ? -INFINITY : 0.f);
    if (threadIdx.x < 32)
      for (int o = 16; o > 0; o /= 2) {
        const float w = __shfl_xor_sync(0xffffffffu, v, o);
        v = is_max ? fmaxf(v, w) : v + w;
      }
    if (threadIdx.x == 0) red[0] = v;
    __syncthreads();
    const float out = red[0];
    __syncthreads();
    return out;
  };
  float m = -INFINITY;
  for (int64_t v = threadIdx.x; v < V; v += blockDim.x) m = fmaxf(m, x[v]);
  m = block_reduce(m, true);
  float s = 0.f;
  for (int64_t v = threadIdx.x; v < V; v += blockDim.x) s += __expf(x[v] - m);
  s = block_reduce(s, false);
  const float lse = m + __logf(s);
  if (threadIdx.x == 0) loss[r] = target >= 0 ? lse - x[target] : 0.f;
  if (dl == nullptr) return;
  const float k = target >= 0 ? scale : 0.f;
  for (int64_t v = threadIdx.x; v < V; v += blockDim.x)
    store_elem(dl, dl_type, r * V + v, k * (__expf(x[v] - lse) - (v == target ? 1.f : 0.f)));
}

// part[p, c] = Σ over rows p·rows_per_part ... of x[r, c]: blocks of 32 columns x 8 row lanes, lanes added in order.
__global__ void column_part_kernel(const float* x, int64_t rows, int64_t cols, int64_t rows_per_part, float* part) {
  __shared__ float lane[8][33];
  const int64_t c = static_cast<int64_t>(blockIdx.x) * 32 + threadIdx.x;
  const int64_t r0 = static_cast<int64_t>(blockIdx.y) * rows_per_part, r1 = std::min(rows, r0 + rows_per_part);
  float s = 0.f;
  if (c < cols)
    for (int64_t r = r0 + threadIdx.y; r < r1; r += 8) s += x[r * cols + c];
  lane[threadIdx.y][threadIdx.x] = s;
  __syncthreads();
  if (threadIdx.y != 0 || c >= cols) return;
  float total = 0.f;
#pragma unroll
  for (int y = 0; y < 8; ++y) total += lane[y][threadIdx.x];
  part[static_cast<int64_t>(blockIdx.y) * cols + c] = total;
}

__global__ void sum_parts_kernel(const float* part, int parts, int64_t cols, float* out) {
  const int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= cols) return;
  float s = 0.f;
  for (int p = 0; p < parts; ++p) s += part[static_cast<int64_t>(p) * cols + c];
  out[c] = s;
}

}  // namespace

Tensor column_sum(const Tensor& x, int64_t rows, int64_t cols) {
  Tensor out = Tensor::zeros({cols}, DType::f32, Device::cuda);
  if (rows == 0 || cols == 0) return out;
  // A fixed number of row parts (from the shape alone), so the order of the additions never changes.
  const int64_t parts = std::clamp<int64_t>(rows / 256, 1, 128), per = (rows + parts - 1) / parts;
  Tensor part = Tensor::empty({parts, cols}, DType::f32, Device::cuda);
  column_part_kernel<<<dim3(static_cast<unsigned>((cols + 31) / 32), static_cast<unsigned>(parts)), dim3(32, 8)>>>(
      static_cast<const float*>(x.raw()), rows, cols, per, static_cast<float*>(part.raw_mut()));
  sum_parts_kernel<<<static_cast<unsigned>((cols + 255) / 256), 256>>>(static_cast<const float*>(part.raw()),
                                                                       static_cast<int>(parts), cols,
                                                                       static_cast<float*>(out.raw_mut()));
  GDN2_CUDA_CHECK(cudaGetLastError());
  return out;
}

Tensor embedding_forward(const Tensor& ids, const Tensor& table) {
  const int64_t D = table.size(1), n = ids.numel();
  Shape s = ids.shape();
  s.push_back(D);
  Tensor y = Tensor::empty(s, table.dtype(), Device::cuda);
  if (n == 0 || D == 0) return y;
  const Tensor dev_ids = ids.is_cpu() || ids.dtype() != DType::i32 ? upload(host_ids(ids)) : ids;
  embedding_kernel<<<static_cast<unsigned>(n), 256>>>(static_cast<const int32_t*>(dev_ids.raw()), table.raw(),
                                                      elem_type(table, "embedding", "table"), D, y.raw_mut());
  GDN2_CUDA_CHECK(cudaGetLastError());
  return y;
}

void embedding_backward(const Tensor& dy, const Tensor& ids, Tensor& dtable) {
  const int64_t D = dtable.size(1);
  const std::vector<int32_t> id = host_ids(ids);
  if (id.empty() || D == 0) return;
  std::vector<int32_t> order(id.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return id[a] < id[b]; });
  std::vector<int32_t> start, uniq;
  for (size_t i = 0; i < order.size(); ++i)
    if (i == 0 || id[order[i]] != id[order[i - 1]]) {
      start.push_back(static_cast<int32_t>(i));
      uniq.push_back(id[order[i]]);
    }
  start.push_back(static_cast<int32_t>(order.size()));
  const Tensor o = upload(order), st = upload(start), u = upload(uniq);
  const dim3 grid(static_cast<unsigned>(uniq.size()), static_cast<unsigned>((D + 255) / 256));
  embedding_backward_kernel<<<grid, 256>>>(dy.raw(), elem_type(dy, "embedding_backward", "dy"),
                                           static_cast<const int32_t*>(o.raw()), static_cast<const int32_t*>(st.raw()),
                                           static_cast<const int32_t*>(u.raw()), D,
                                           static_cast<float*>(dtable.raw_mut()));
  GDN2_CUDA_CHECK(cudaGetLastError());
}

LmLoss lm_head_cross_entropy(const Tensor& h, const Tensor& W, const Tensor& targets, bool want_grad, Tensor* dW,
                             double grad_scale, int64_t rows_per_block) {
  const int64_t N = h.size(0), D = h.size(1), V = W.size(0);
  const std::vector<int32_t> tgt = host_ids(targets);
  LmLoss r;
  for (int32_t t : tgt) r.count += t >= 0 ? 1 : 0;
  if (want_grad) r.dh = Tensor::zeros({N, D}, h.dtype(), Device::cuda);
  if (r.count == 0 || N == 0) return r;
  const Tensor dev_t = upload(tgt);
  const cudaDataType_t t = gemm_type(h, "lm_head_cross_entropy", "h");
  const ElemType et = elem_type(h, "lm_head_cross_entropy", "h");
  const size_t e = dtype_size(h.dtype());
  // Rows per block: the F32 logits block holds at most 64M elements (256 MB).
  const int64_t rb = rows_per_block > 0 ? std::min(rows_per_block, N) : std::clamp<int64_t>((int64_t{1} << 26) / V, 1, N);
  Tensor logits = Tensor::empty({rb, V}, DType::f32, Device::cuda);
  Tensor dl = want_grad ? Tensor::empty({rb, V}, h.dtype(), Device::cuda) : Tensor();
  Tensor loss = Tensor::empty({N}, DType::f32, Device::cuda);
  const float scale = static_cast<float>(grad_scale / static_cast<double>(r.count));
  for (int64_t r0 = 0; r0 < N; r0 += rb) {
    const int64_t n = std::min(rb, N - r0);
    const void* hb = static_cast<const std::byte*>(h.raw()) + r0 * D * e;
    // logits^T [V, n] = W [V, D] · h_blk^T, as the linear layer's forward.
    gemm(V, n, D, {W.raw(), t, D, true}, {hb, t, D, false}, 0.f, logits.raw_mut(), CUDA_R_32F, V, nullptr);
    softmax_xent_kernel<<<static_cast<unsigned>(n), 256>>>(
        static_cast<const float*>(logits.raw()), static_cast<const int32_t*>(dev_t.raw()) + r0, V, scale,
        static_cast<float*>(loss.raw_mut()) + r0, want_grad ? dl.raw_mut() : nullptr, et);
    GDN2_CUDA_CHECK(cudaGetLastError());
    if (!want_grad) continue;
    void* dhb = static_cast<std::byte*>(r.dh.raw_mut()) + r0 * D * e;
    gemm(D, n, V, {W.raw(), t, D, false}, {dl.raw(), t, V, false}, 0.f, dhb, t, D, nullptr);  // dh = dl · W
    if (dW != nullptr)  // dW^T [D, V] += h_blk^T · dl
      gemm(D, V, n, {hb, t, D, false}, {dl.raw(), t, V, true}, 1.f, dW->raw_mut(),
           gemm_type(*dW, "lm_head_cross_entropy", "dW"), D, nullptr);
  }
  const Tensor l = loss.cpu();
  double total = 0;
  for (int64_t i = 0; i < N; ++i) total += l.data<float>()[i];
  r.loss = total / static_cast<double>(r.count);
  return r;
}

}  // namespace gdn2::cuda
