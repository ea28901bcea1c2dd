// Output-tiled parallel GEMM over cpu::gemm.
#include "cpu/matmul.h"

#include <algorithm>

#include "cpu/gemm.h"
#include "cpu/parallel.h"

namespace gdn2::cpu {

template <class Real>
void matmul(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, Real alpha, const Real* A, int64_t lda,
            const Real* B, int64_t ldb, Real beta, Real* C, int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  constexpr int64_t kTileM = 96, kTileN = 256;
  const int64_t tm = (M + kTileM - 1) / kTileM, tn = (N + kTileN - 1) / kTileN;
  const bool parallel = tm * tn > 1 && worth_parallel(M * N * std::max<int64_t>(K, 1));
#pragma omp parallel for schedule(dynamic, 1) collapse(2) if (parallel)
  for (int64_t i = 0; i < tm; ++i) {
    for (int64_t j = 0; j < tn; ++j) {
      const int64_t m0 = i * kTileM, n0 = j * kTileN;
      const int64_t mb = std::min(kTileM, M - m0), nb = std::min(kTileN, N - n0);
      const Real* a = trans_a ? A + m0 : A + m0 * lda;
      const Real* b = trans_b ? B + n0 * ldb : B + n0;
      gemm<Real>(trans_a, trans_b, mb, nb, K, alpha, a, lda, b, ldb, beta, C + m0 * ldc + n0, ldc);
    }
  }
}

template void matmul<float>(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*,
                            int64_t, float, float*, int64_t);
template void matmul<double>(bool, bool, int64_t, int64_t, int64_t, double, const double*, int64_t, const double*,
                             int64_t, double, double*, int64_t);

}  // namespace gdn2::cpu
