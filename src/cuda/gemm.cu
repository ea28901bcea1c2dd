// cuBLASLt products for the CUDA dense ops (gemm.h).
#include "cuda/gemm.h"

#include "cuda/stream.h"

#include <cublasLt.h>

#include <map>
#include <memory>
#include <mutex>
#include <tuple>

#include "cuda/common.cuh"

#define GDN2_CUBLAS_CHECK(expr)                                                                                  \
  do {                                                                                                           \
    const cublasStatus_t gdn2_cublas_status_ = (expr);                                                           \
    if (gdn2_cublas_status_ != CUBLAS_STATUS_SUCCESS)                                                            \
      ::gdn2::detail::fail<::gdn2::DeviceError>(__FILE__, __LINE__, #expr, "cuBLASLt error: ",                   \
                                                cublasLtGetStatusString(gdn2_cublas_status_));                   \
  } while (0)

namespace gdn2::cuda {

namespace {

constexpr size_t kWorkspaceBytes = size_t{32} << 20;  // what cuBLASLt's heuristics may use per product

struct LtContext {
  cublasLtHandle_t handle = nullptr;
  void* workspace = nullptr;
};

// Made at first use on the current device and kept for the process.
LtContext& lt() {
  static LtContext ctx;
  static std::once_flag once;
  std::call_once(once, [] {
    GDN2_CUBLAS_CHECK(cublasLtCreate(&ctx.handle));
    GDN2_CUDA_CHECK(cudaMalloc(&ctx.workspace, kWorkspaceBytes));
  });
  return ctx;
}

// Owners of the descriptors of one product.
struct Desc {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, d = nullptr;
  cublasLtMatmulPreference_t pref = nullptr;
  ~Desc() {
    if (pref) cublasLtMatmulPreferenceDestroy(pref);
    if (d) cublasLtMatrixLayoutDestroy(d);
    if (b) cublasLtMatrixLayoutDestroy(b);
    if (a) cublasLtMatrixLayoutDestroy(a);
    if (op) cublasLtMatmulDescDestroy(op);
  }
};

// The heuristic's choice per product shape, looked up once (the query costs tens of microseconds of host time, more
// than many of the products take on the GPU). The choice depends only on what the key holds: the descriptors are made
// from these values alone, with the same preference.
using AlgoKey = std::tuple<int64_t, int64_t, int64_t, int, bool, int64_t, int, bool, int64_t, int, int64_t, bool>;

struct AlgoCache {
  std::mutex mu;
  std::map<AlgoKey, cublasLtMatmulAlgo_t> algos;
};

AlgoCache& algo_cache() {
  static AlgoCache c;
  return c;
}

}  // namespace

cudaDataType_t gemm_type(const Tensor& t, const char* op, const char* name) {
  switch (t.dtype()) {
    case DType::f32: return CUDA_R_32F;
    case DType::bf16: return CUDA_R_16BF;
    case DType::f16: return CUDA_R_16F;
    default: GDN2_THROW(DTypeError, op, ": ", name, " must be F32, BF16 or F16 on the GPU, got ", t.describe());
  }
}

void gemm(int64_t m, int64_t n, int64_t k, const GemmOperand& a, const GemmOperand& b, float beta, void* d,
          cudaDataType_t d_type, int64_t ldd, const void* bias, cudaStream_t stream, const void* c) {
  if (m == 0 || n == 0) return;
  if (stream == nullptr) stream = gdn2::cuda::stream();
  LtContext& ctx = lt();
  Desc desc;
  GDN2_CUBLAS_CHECK(cublasLtMatmulDescCreate(&desc.op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  const cublasOperation_t ta = a.transposed ? CUBLAS_OP_T : CUBLAS_OP_N, tb = b.transposed ? CUBLAS_OP_T : CUBLAS_OP_N;
  GDN2_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc.op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta)));
  GDN2_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc.op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb)));
  if (bias != nullptr) {
    const cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_BIAS;
    GDN2_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc.op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof(epi)));
    GDN2_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc.op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias)));
    GDN2_CUBLAS_CHECK(
        cublasLtMatmulDescSetAttribute(desc.op, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &d_type, sizeof(d_type)));
  }
  // Stored shapes: op(A) is m x k, so A is stored k x m when transposed.
  GDN2_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&desc.a, a.type, a.transposed ? k : m, a.transposed ? m : k, a.ld));
  GDN2_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&desc.b, b.type, b.transposed ? n : k, b.transposed ? k : n, b.ld));
  GDN2_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&desc.d, d_type, m, n, ldd));
  GDN2_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&desc.pref));
  const size_t ws = kWorkspaceBytes;
  GDN2_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(desc.pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws,
                                                         sizeof(ws)));
  const AlgoKey key{m, n, k, a.type, a.transposed, a.ld, b.type, b.transposed, b.ld, d_type, ldd, bias != nullptr};
  AlgoCache& cache = algo_cache();
  cublasLtMatmulAlgo_t algo;
  {
    std::lock_guard<std::mutex> lock(cache.mu);
    auto it = cache.algos.find(key);
    if (it == cache.algos.end()) {
      cublasLtMatmulHeuristicResult_t best{};
      int found = 0;
      GDN2_CUBLAS_CHECK(cublasLtMatmulAlgoGetHeuristic(ctx.handle, desc.op, desc.a, desc.b, desc.d, desc.d, desc.pref,
                                                       1, &best, &found));
      GDN2_CHECK(found > 0, UnsupportedError, "cuBLASLt has no algorithm for a ", m, " x ", n, " x ", k,
                 " product of these element types and leading dimensions");
      it = cache.algos.emplace(key, best.algo).first;
    }
    algo = it->second;
  }
  const float alpha = 1.f;
  GDN2_CUBLAS_CHECK(cublasLtMatmul(ctx.handle, desc.op, &alpha, a.ptr, desc.a, b.ptr, desc.b, &beta,
                                   c != nullptr ? c : d, desc.d, d, desc.d, &algo, ctx.workspace, kWorkspaceBytes,
                                   stream));
}

}  // namespace gdn2::cuda
