// The packed CPU GEMM against a loop reference: every transpose combination, ragged sizes around the 6-row and
// vector-width tiles and the 8-wide packing blocks, padded leading dimensions, alpha and beta (beta 0 never reads C).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "cpu/gemm.h"

namespace gdn2 {
namespace {

template <class Real>
void check_gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, Real alpha, Real beta, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(-1, 1);
  const int64_t lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 5, ldc = N + 2;
  std::vector<Real> A(static_cast<size_t>((ta ? K : M) * lda)), B(static_cast<size_t>((tb ? N : K) * ldb)),
      C(static_cast<size_t>(M * ldc));
  for (Real& x : A) x = static_cast<Real>(u(rng));
  for (Real& x : B) x = static_cast<Real>(u(rng));
  for (Real& x : C) x = beta == Real(0) ? std::numeric_limits<Real>::quiet_NaN() : static_cast<Real>(u(rng));
  std::vector<Real> C0 = C;
  cpu::gemm<Real>(ta, tb, M, N, K, alpha, A.data(), lda, B.data(), ldb, beta, C.data(), ldc);
  const double eps = std::is_same_v<Real, float> ? 1e-6 : 1e-15;
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double s = 0;
      for (int64_t p = 0; p < K; ++p)
        s += static_cast<double>(ta ? A[p * lda + i] : A[i * lda + p]) *
             static_cast<double>(tb ? B[j * ldb + p] : B[p * ldb + j]);
      const double want = alpha * s + (beta == Real(0) ? 0.0 : beta * static_cast<double>(C0[i * ldc + j]));
      ASSERT_NEAR(C[i * ldc + j], want, eps * (4 + 2 * static_cast<double>(K)))
          << "ta " << ta << " tb " << tb << " M " << M << " N " << N << " K " << K << " at " << i << "," << j;
    }
  for (int64_t i = 0; i < M; ++i)  // the padding between rows of C is left alone
    for (int64_t j = N; j < ldc; ++j) {
      const Real got = C[i * ldc + j], was = C0[i * ldc + j];
      ASSERT_TRUE(got == was || (std::isnan(got) && std::isnan(was)));
    }
}

TEST(Gemm, MatchesLoopReference) {
  const int64_t sizes[] = {1, 5, 6, 7, 8, 13, 16, 17, 33, 64, 70};
  uint64_t seed = 1;
  for (bool ta : {false, true})
    for (bool tb : {false, true})
      for (int64_t M : sizes)
        for (int64_t N : {1, 7, 8, 16, 17, 40})
          for (int64_t K : {1, 7, 8, 9, 16, 23, 64}) {
            check_gemm<float>(ta, tb, M, N, K, 1.0f, 0.0f, seed);
            check_gemm<double>(ta, tb, M, N, K, 1.0, 0.0, seed++);
          }
}

TEST(Gemm, AlphaBetaAndZeroK) {
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      check_gemm<float>(ta, tb, 13, 17, 24, 0.5f, 1.0f, 3);
      check_gemm<double>(ta, tb, 13, 17, 24, -2.0, 0.25, 4);
      check_gemm<float>(ta, tb, 7, 9, 0, 1.0f, 0.5f, 5);  // K = 0: C = beta·C
      check_gemm<double>(ta, tb, 7, 9, 0, 1.0, 0.0, 6);   // K = 0, beta = 0: C = 0 (NaN never read)
    }
}

}  // namespace
}  // namespace gdn2
