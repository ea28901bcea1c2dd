// Packed register-tiled GEMM (6 rows x 2 vectors per tile) written with GCC/Clang vector extensions.
#include "cpu/gemm.h"

#include <algorithm>
#include <cstring>
#include <vector>

namespace gdn2::cpu {

namespace {

template <class Real>
struct Vec;
template <>
struct Vec<float> {
  typedef float type __attribute__((vector_size(32)));
  static constexpr int lanes = 8;
};
template <>
struct Vec<double> {
  typedef double type __attribute__((vector_size(32)));
  static constexpr int lanes = 4;
};

constexpr int64_t kMR = 6;

template <class Real>
struct Packs {
  std::vector<Real> a, b;
};
template <class Real>
Packs<Real>& thread_packs() {
  thread_local Packs<Real> p;
  return p;
}

// Kept out of line: inlined into a larger gemm() body GCC may spill its accumulators to the stack (seen once,
// 40% slower).
template <class Real>
__attribute__((noinline)) void kernel_tile(int64_t K, const Real* ap, const Real* bp, Real alpha, Real beta, Real* C,
                                           int64_t ldc, int64_t rows, int64_t cols) {
  using V = typename Vec<Real>::type;
  constexpr int W = Vec<Real>::lanes;
  V acc[kMR][2] = {};
  for (int64_t p = 0; p < K; ++p) {
    V b0, b1;
    std::memcpy(&b0, bp + p * 2 * W, sizeof(V));
    std::memcpy(&b1, bp + p * 2 * W + W, sizeof(V));
    const Real* a = ap + p * kMR;
#pragma GCC unroll 6
    for (int r = 0; r < kMR; ++r) {
      acc[r][0] += a[r] * b0;
      acc[r][1] += a[r] * b1;
    }
  }
  alignas(32) Real tile[kMR][2 * W];
  for (int r = 0; r < kMR; ++r) {
    std::memcpy(&tile[r][0], &acc[r][0], sizeof(V));
    std::memcpy(&tile[r][W], &acc[r][1], sizeof(V));
  }
  for (int64_t r = 0; r < rows; ++r) {
    Real* c = C + r * ldc;
    if (beta == Real(0)) {
      for (int64_t j = 0; j < cols; ++j) c[j] = alpha * tile[r][j];
    } else {
      for (int64_t j = 0; j < cols; ++j) c[j] = alpha * tile[r][j] + beta * c[j];
    }
  }
}

// All of op(A) = Aᵀ, A stored [K, M], as panels of kMR rows: panel ip holds dst[ip·kMR·K + p·kMR + r], rows past
// M zero. Row by row of A, so each is read once, front to back.
template <class Real>
void pack_at_rows(const Real* A, int64_t lda, int64_t M, int64_t K, Real* dst) {
  const int64_t full = M / kMR, mp = (M + kMR - 1) / kMR;
  for (int64_t p = 0; p < K; ++p) {
    const Real* src = A + p * lda;
    for (int64_t ip = 0; ip < full; ++ip) std::memcpy(dst + (ip * K + p) * kMR, src + ip * kMR, kMR * sizeof(Real));
    if (full < mp) {
      Real* d = dst + (full * K + p) * kMR;
      for (int64_t r = 0; r < kMR; ++r) d[r] = full * kMR + r < M ? src[full * kMR + r] : Real(0);
    }
  }
}

// Rows [r0, r0 + rows) of A [M, K] (not transposed; rows <= kMR) as one panel: dst[p·kMR + r], rows past `rows`
// zero.
template <class Real>
void pack_a_panel(const Real* A, int64_t lda, int64_t r0, int64_t rows, int64_t K, Real* dst) {
  if (rows == kMR) {  // the common full panel: six row streams, no per-element tests
    const Real* a = A + r0 * lda;
    for (int64_t p = 0; p < K; ++p) {
#pragma GCC unroll 6
      for (int64_t r = 0; r < kMR; ++r) dst[p * kMR + r] = a[r * lda + p];
    }
    return;
  }
  for (int64_t p = 0; p < K; ++p)
    for (int64_t r = 0; r < kMR; ++r) dst[p * kMR + r] = r < rows ? A[(r0 + r) * lda + p] : Real(0);
}

// All of B [K, N] (not transposed) as panels of NR columns: panel jp holds dst[jp·NR·K + p·NR + c], columns past N
// zero. Row by row, so each row of B is read once, front to back (panel by panel would stride through all of B
// once per panel: slow when B is a long cache of keys or values).
template <class Real, int64_t NR>
void pack_b_rows(const Real* B, int64_t ldb, int64_t N, int64_t K, Real* dst) {
  const int64_t full = N / NR, np = (N + NR - 1) / NR;
  for (int64_t p = 0; p < K; ++p) {
    const Real* src = B + p * ldb;
    for (int64_t jp = 0; jp < full; ++jp)  // a fixed-size copy the compiler inlines
      std::memcpy(dst + (jp * K + p) * NR, src + jp * NR, NR * sizeof(Real));
    if (full < np) {
      Real* d = dst + (full * K + p) * NR;
      for (int64_t c = 0; c < NR; ++c) d[c] = full * NR + c < N ? src[full * NR + c] : Real(0);
    }
  }
}

// Columns [c0, c0 + cols) of op(B) = Bᵀ (cols <= NR) as one panel: dst[p·NR + c], columns past `cols` zero.
template <class Real, int64_t NR>
void pack_bt_panel(const Real* B, int64_t ldb, int64_t c0, int64_t cols, int64_t K, Real* dst) {
  // B stored [N, K] (op(B) = Bᵀ): transpose, NR row streams read in step so each p writes one panel row.
  const Real* b = B + c0 * ldb;
  if (cols == NR) {
    for (int64_t p = 0; p < K; ++p) {
#pragma GCC unroll 16
      for (int64_t c = 0; c < NR; ++c) dst[p * NR + c] = b[c * ldb + p];
    }
    return;
  }
  for (int64_t p = 0; p < K; ++p)
    for (int64_t c = 0; c < NR; ++c) dst[p * NR + c] = c < cols ? b[c * ldb + p] : Real(0);
}

}  // namespace

template <class Real>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, Real alpha, const Real* A, int64_t lda,
          const Real* B, int64_t ldb, Real beta, Real* C, int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) C[i * ldc + j] = beta == Real(0) ? Real(0) : beta * C[i * ldc + j];
    return;
  }
  constexpr int64_t NR = 2 * Vec<Real>::lanes;
  const int64_t mp = (M + kMR - 1) / kMR, np = (N + NR - 1) / NR;
  Packs<Real>& packs = thread_packs<Real>();
  // Every element of the packs is written below (padding included), so they are only grown, never cleared.
  if (packs.a.size() < static_cast<size_t>(mp * kMR * K)) packs.a.resize(static_cast<size_t>(mp * kMR * K));
  if (packs.b.size() < static_cast<size_t>(np * NR * K)) packs.b.resize(static_cast<size_t>(np * NR * K));
  if (trans_a) {
    pack_at_rows(A, lda, M, K, packs.a.data());
  } else {
    for (int64_t ip = 0; ip < mp; ++ip)
      pack_a_panel(A, lda, ip * kMR, std::min(kMR, M - ip * kMR), K, packs.a.data() + ip * kMR * K);
  }
  if (!trans_b) {
    pack_b_rows<Real, NR>(B, ldb, N, K, packs.b.data());
  } else {
    for (int64_t jp = 0; jp < np; ++jp)
      pack_bt_panel<Real, NR>(B, ldb, jp * NR, std::min(NR, N - jp * NR), K, packs.b.data() + jp * NR * K);
  }
  for (int64_t ip = 0; ip < mp; ++ip)
    for (int64_t jp = 0; jp < np; ++jp)
      kernel_tile<Real>(K, packs.a.data() + ip * kMR * K, packs.b.data() + jp * NR * K, alpha, beta,
                        C + ip * kMR * ldc + jp * NR, ldc, std::min(kMR, M - ip * kMR), std::min(NR, N - jp * NR));
}

template void gemm<float>(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*, int64_t,
                          float, float*, int64_t);
template void gemm<double>(bool, bool, int64_t, int64_t, int64_t, double, const double*, int64_t, const double*,
                           int64_t, double, double*, int64_t);

}  // namespace gdn2::cpu
