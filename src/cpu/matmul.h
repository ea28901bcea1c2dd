// Multi-threaded dense products for the model's projections: tiles of the output in parallel, each a packed GEMM.
#pragma once

#include <cstdint>

namespace gdn2::cpu {

// C[M, N] = alpha * op(A) * op(B) + beta * C (row-major, as cpu::gemm), split into output tiles across threads.
// Deterministic: each output element is computed by one thread in a fixed order.
template <class Real>
void matmul(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, Real alpha, const Real* A, int64_t lda,
            const Real* B, int64_t ldb, Real beta, Real* C, int64_t ldc);

}  // namespace gdn2::cpu
