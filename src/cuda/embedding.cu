// CUDA embedding (embedding.h): the lookup as a row gather in the widest aligned unit (up to 16 bytes) with an
// in-kernel range check of device ids, and the gradient as a fixed-order scatter-add of rows grouped by id on the host.
#include "cuda/embedding.h"

#include <algorithm>
#include <cstdint>

#include "cuda/common.cuh"
#include "cuda/stream.h"
#include "cuda/elem.h"
#include "cuda/gdn2/load.cuh"

namespace gdn2::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 132 * 16;

// Row r of y = row ids[r] of the table, copied in `unit`-byte pieces (1, 2, 4, 8 or 16; it divides both addresses and
// row_bytes) by the blockDim.x threads of one block row; blockDim.y rows per block. An id outside [0, V) zeroes its
// row and, when bad is given, raises *bad to n - r (so that *bad = n - the first such r).
template <class Id>
__global__ void gather_kernel(const Id* ids, int64_t n, int64_t V, const char* table, char* y, int64_t row_bytes,
                              int unit, unsigned long long* bad) {
  const int64_t units = row_bytes / unit;
  for (int64_t r = static_cast<int64_t>(blockIdx.x) * blockDim.y + threadIdx.y; r < n;
       r += static_cast<int64_t>(gridDim.x) * blockDim.y) {
    const int64_t id = static_cast<int64_t>(ids[r]);
    if (id < 0 || id >= V) {
      if (bad != nullptr && threadIdx.x == 0) atomicMax(bad, static_cast<unsigned long long>(n - r));
      for (int64_t u = threadIdx.x; u < row_bytes; u += blockDim.x) y[r * row_bytes + u] = 0;
      continue;
    }
    const char* s = table + id * row_bytes;
    char* d = y + r * row_bytes;
    for (int64_t u = threadIdx.x; u < units; u += blockDim.x) {
      const int64_t o = u * unit;
      switch (unit) {
        case 16: *reinterpret_cast<uint4*>(d + o) = *reinterpret_cast<const uint4*>(s + o); break;
        case 8: *reinterpret_cast<uint2*>(d + o) = *reinterpret_cast<const uint2*>(s + o); break;
        case 4: *reinterpret_cast<uint32_t*>(d + o) = *reinterpret_cast<const uint32_t*>(s + o); break;
        case 2: *reinterpret_cast<uint16_t*>(d + o) = *reinterpret_cast<const uint16_t*>(s + o); break;
        default: d[o] = s[o];
      }
    }
  }
}

// Block (u, y): columns 8·(y·blockDim.x + threadIdx.x) .. + 7 of id uniq[u]: the rows order[start[u] .. start[u + 1])
// of dy (element type t) summed in that order, then added to dtable's row. vec: D % 8 == 0 and dy and dtable 16-byte
// aligned (every access below is then aligned).
__global__ void scatter_add_kernel(const void* dy, ElemType t, int64_t D, const int32_t* order, const int32_t* start,
                                   const int32_t* uniq, float* dtable, bool vec) {
  const int64_t d = (static_cast<int64_t>(blockIdx.y) * blockDim.x + threadIdx.x) * 8;
  if (d >= D) return;
  const int valid = static_cast<int>(std::min<int64_t>(8, D - d));
  const int u = blockIdx.x;
  float acc[8] = {};
  for (int32_t k = start[u]; k < start[u + 1]; ++k) {
    float v[8];
    load_elems<8>(v, dy, t, static_cast<int64_t>(order[k]) * D + d, valid, vec);
#pragma unroll
    for (int e = 0; e < 8; ++e) acc[e] += v[e];
  }
  float* row = dtable + static_cast<int64_t>(uniq[u]) * D + d;
  if (vec) {
    float4* q = reinterpret_cast<float4*>(row);
    float4 a = q[0], b = q[1];
    a.x += acc[0], a.y += acc[1], a.z += acc[2], a.w += acc[3];
    b.x += acc[4], b.y += acc[5], b.z += acc[6], b.w += acc[7];
    q[0] = a, q[1] = b;
  } else {
    for (int e = 0; e < valid; ++e) row[e] += acc[e];
  }
}

int lowest_bit(uintptr_t bits) { return static_cast<int>(bits & (~bits + 1)); }

}  // namespace

Tensor embedding_gather(const Tensor& ids, const Tensor& table, bool check) {
  const int64_t V = table.size(0), D = table.size(1), n = ids.numel();
  Shape shape = ids.shape();
  shape.push_back(D);
  Tensor y = Tensor::empty(shape, table.dtype(), Device::cuda);
  if (n == 0) return y;
  const bool device_ids = !ids.is_cpu();
  const Tensor dev_ids = device_ids ? ids : ids.to(Device::cuda);
  const bool flagged = device_ids && check;
  Tensor bad = flagged ? Tensor::zeros({1}, DType::i64, Device::cuda) : Tensor();
  auto* flag = flagged ? static_cast<unsigned long long*>(bad.raw_mut()) : nullptr;

  const int64_t row_bytes = D * static_cast<int64_t>(dtype_size(table.dtype()));
  const int unit = lowest_bit(reinterpret_cast<uintptr_t>(table.raw()) | reinterpret_cast<uintptr_t>(y.raw()) |
                              static_cast<uintptr_t>(row_bytes) | uintptr_t{16});
  int tx = 1;  // threads per row: the pieces of a row, rounded up to a power of two, at most a block
  while (tx < row_bytes / unit && tx < kThreads) tx *= 2;
  const dim3 block(tx, kThreads / tx);
  const auto grid = static_cast<unsigned>(std::min<int64_t>((n + block.y - 1) / block.y, kMaxBlocks));
  const auto* src = static_cast<const char*>(table.raw());
  auto* dst = static_cast<char*>(y.raw_mut());
  if (ids.dtype() == DType::i32)
    gather_kernel<<<grid, block, 0, stream()>>>(static_cast<const int32_t*>(dev_ids.raw()), n, V, src, dst, row_bytes, unit, flag);
  else
    gather_kernel<<<grid, block, 0, stream()>>>(static_cast<const int64_t*>(dev_ids.raw()), n, V, src, dst, row_bytes, unit, flag);
  GDN2_CUDA_CHECK(cudaGetLastError());
  if (!flagged) return y;
  const int64_t raised = bad.cpu().data<int64_t>()[0];  // waits for the kernel
  if (raised != 0) {
    const int64_t r = n - raised;
    const auto id = static_cast<int64_t>(ids.reshape({n}).slice0(r, r + 1).cpu().item(0));
    GDN2_THROW(ValueError, "embedding: token id ", id, " at ", r, " outside [0, ", V, ")");
  }
  return y;
}

void embedding_scatter_add(const Tensor& dy, const std::vector<int64_t>& ids, Tensor& dtable) {
  const int64_t V = dtable.size(0), D = dtable.size(1), n = static_cast<int64_t>(ids.size());
  if (n == 0 || D == 0) return;
  GDN2_CHECK(n <= INT32_MAX && V <= INT32_MAX, ShapeError, "embedding_backward on the GPU: ", n, " ids and ", V,
             " table rows must each be below 2^31");
  // Counting sort by id, rows kept in order within an id: first[v] = where id v's rows start in `order`.
  std::vector<int64_t> first(static_cast<size_t>(V) + 1, 0);
  for (int64_t id : ids) ++first[static_cast<size_t>(id) + 1];
  int64_t distinct = 0;
  for (int64_t v = 0; v < V; ++v) {
    distinct += first[v + 1] > 0 ? 1 : 0;
    first[v + 1] += first[v];
  }
  // One upload: order [n], start [distinct + 1], uniq [distinct].
  std::vector<int32_t> meta(static_cast<size_t>(n + 2 * distinct + 1));
  int32_t* order = meta.data();
  int32_t* start = order + n;
  int32_t* uniq = start + distinct + 1;
  for (int64_t v = 0, u = 0; v < V; ++v)
    if (first[v + 1] > first[v]) {
      start[u] = static_cast<int32_t>(first[v]);
      uniq[u++] = static_cast<int32_t>(v);
    }
  start[distinct] = static_cast<int32_t>(n);
  for (int64_t r = 0; r < n; ++r) order[first[static_cast<size_t>(ids[r])]++] = static_cast<int32_t>(r);
  const Tensor m = Tensor::from_vector<int32_t>({static_cast<int64_t>(meta.size())}, meta).to(Device::cuda);
  const auto* dm = static_cast<const int32_t*>(m.raw());

  const bool vec = D % 8 == 0 && reinterpret_cast<uintptr_t>(dy.raw()) % 16 == 0 &&
                   reinterpret_cast<uintptr_t>(dtable.raw()) % 16 == 0;
  const int64_t col_blocks = (D + 8 * kThreads - 1) / (8 * kThreads);
  const dim3 grid(static_cast<unsigned>(distinct), static_cast<unsigned>(col_blocks));
  scatter_add_kernel<<<grid, kThreads, 0, stream()>>>(dy.raw(), elem_type(dy, "embedding_backward", "dy"), D, dm, dm + n,
                                         dm + n + distinct + 1, static_cast<float*>(dtable.raw_mut()), vec);
  GDN2_CUDA_CHECK(cudaGetLastError());
}

}  // namespace gdn2::cuda
