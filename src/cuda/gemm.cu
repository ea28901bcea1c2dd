// cuBLASLt products for the CUDA dense ops (gemm.h).
#include "cuda/gemm.h"

#include "cuda/stream.h"

#include <cublasLt.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>

#include "cuda/common.cuh"
#include "cuda/timing.h"

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

// The algorithm per product shape. The first call of a shape takes the heuristic's first choice (the query costs tens
// of microseconds of host time, more than many of the products take on the GPU). The second call, outside a graph
// capture, times the heuristic's first kTuneCandidates choices on the call's own operands and keeps the fastest: the
// heuristic's first choice is often not the fastest for thin products (decode's, whose time is the weights' reads).
// A shape seen once (a prompt's odd length) is not timed; a shape a loop repeats (training steps, decode) is, once.
// GDN2_GEMM_TUNE=0 keeps the heuristic's first choice throughout. The choice depends only on what the key holds: the
// descriptors are made from these values alone, with the same preference.
using AlgoKey = std::tuple<int64_t, int64_t, int64_t, int, bool, int64_t, int, bool, int64_t, int, int64_t, bool>;

struct AlgoEntry {
  cublasLtMatmulAlgo_t algo;
  bool settled = false;  // timed already (or tuning is off)
};

struct AlgoCache {
  std::mutex mu;
  std::map<AlgoKey, AlgoEntry> algos;
};

AlgoCache& algo_cache() {
  static AlgoCache c;
  return c;
}

constexpr int kTuneCandidates = 8;

size_t elem_bytes(cudaDataType_t t) { return t == CUDA_R_32F ? 4 : 2; }

bool tuning_on() {
  static const bool on = [] {
    const char* e = std::getenv("GDN2_GEMM_TUNE");
    return e == nullptr || std::string(e) != "0";
  }();
  return on;
}

// One product with a given algorithm; its status, not checked (a candidate may refuse the shape).
struct Product {
  const LtContext& ctx;
  const Desc& desc;
  const void *a, *b, *c;
  void* d;
  float beta;
  cublasStatus_t run(const cublasLtMatmulAlgo_t& algo, cudaStream_t s) const {
    const float alpha = 1.f;
    return cublasLtMatmul(ctx.handle, desc.op, &alpha, a, desc.a, b, desc.b, &beta, c, desc.d, d, desc.d, &algo,
                          ctx.workspace, kWorkspaceBytes, s);
  }
};

// The fastest of the heuristic's first choices for this product (the first choice unless another is at least 3%
// faster: timing noise does not move the choice). Waits for `stream` first; the candidates write D (or a scratch copy
// when D is also C: the product accumulates into what D holds, which the real call still needs).
cublasLtMatmulAlgo_t tune(const Product& prod, const cublasLtMatmulAlgo_t& first, size_t d_bytes, cudaStream_t stream) {
  cublasLtMatmulHeuristicResult_t cand[kTuneCandidates]{};
  int found = 0;
  if (cublasLtMatmulAlgoGetHeuristic(prod.ctx.handle, prod.desc.op, prod.desc.a, prod.desc.b, prod.desc.d,
                                     prod.desc.d, prod.desc.pref, kTuneCandidates, cand, &found) !=
          CUBLAS_STATUS_SUCCESS ||
      found < 2)
    return first;
  GDN2_CUDA_CHECK(cudaStreamSynchronize(stream));
  Product trial = prod;
  std::shared_ptr<void> scratch;
  if (prod.beta != 0.f && prod.c == prod.d) {
    void* p = nullptr;
    if (cudaMalloc(&p, d_bytes) != cudaSuccess) {  // no room: keep the heuristic's choice
      cudaGetLastError();
      return first;
    }
    scratch.reset(p, [](void* q) { cudaFree(q); });
    GDN2_CUDA_CHECK(cudaMemcpy(p, prod.d, d_bytes, cudaMemcpyDeviceToDevice));
    trial.c = trial.d = p;
  }
  // Each candidate runs once (loading its kernel; one that refuses the shape drops out), then is timed over back-to-
  // back calls adding up to about a millisecond.
  double base = -1.0;
  int per = 1;
  cublasLtMatmulAlgo_t best = first;
  double best_ms = 0.0;
  for (int i = 0; i < found; ++i) {
    if (cand[i].state != CUBLAS_STATUS_SUCCESS || trial.run(cand[i].algo, stream) != CUBLAS_STATUS_SUCCESS) continue;
    GDN2_CUDA_CHECK(cudaStreamSynchronize(stream));
    if (base < 0.0) {
      base = time_ms([&](void* s) { trial.run(cand[i].algo, static_cast<cudaStream_t>(s)); }, 0, 3, 1);
      per = std::clamp(static_cast<int>(1.0 / std::max(base, 1e-3)), 1, 64);
    }
    const double ms = time_ms([&](void* s) { trial.run(cand[i].algo, static_cast<cudaStream_t>(s)); }, 0, 3, per);
    if (best_ms == 0.0 || ms < 0.97 * best_ms) best = cand[i].algo, best_ms = ms;
  }
  return best;
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
  const Product prod{ctx, desc, a.ptr, b.ptr, c != nullptr ? c : d, d, beta};
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
      it = cache.algos.emplace(key, AlgoEntry{best.algo, !tuning_on()}).first;
    } else if (!it->second.settled) {
      cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
      GDN2_CUDA_CHECK(cudaStreamIsCapturing(stream, &capture));
      if (capture == cudaStreamCaptureStatusNone) {
        const size_t d_bytes = static_cast<size_t>(ldd) * static_cast<size_t>(n - 1) + static_cast<size_t>(m);
        it->second.algo = tune(prod, it->second.algo, d_bytes * elem_bytes(d_type), stream);
        it->second.settled = true;
      }
    }
    algo = it->second.algo;
  }
  GDN2_CUBLAS_CHECK(prod.run(algo, stream));
}

}  // namespace gdn2::cuda
