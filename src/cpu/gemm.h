// Small dense matrix products for the CPU kernels (chunk-sized: tens to hundreds per side), single-threaded.
#pragma once

#include <cstdint>

namespace gdn2::cpu {

// C[M, N] = alpha * op(A) * op(B) + beta * C, all row-major. op(A) is A [M, K] (leading dim lda), or A^T with A
// stored [K, M] when trans_a; likewise B [K, N] or B^T with B stored [N, K]. beta == 0 never reads C.
template <class Real>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, Real alpha, const Real* A, int64_t lda,
          const Real* B, int64_t ldb, Real beta, Real* C, int64_t ldc);

}  // namespace gdn2::cpu
