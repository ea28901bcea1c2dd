// Warp-level tensor-core tiles for the GDN-2 chunk kernels: mma.sync m16n8k16 (bf16 in, fp32 accumulate), fragment
// loads from padded bf16 shared-memory tiles, m16n8k8 tf32 and 3xTF32 (fp32-level accuracy), and cp.async copies.
//
// Fragment layout (PTX ISA, m16n8k16): lane = 4 g + t. A (16x16, row-major): a0 = (g, 2t..2t+1), a1 = (g+8, 2t..),
// a2 = (g, 2t+8..), a3 = (g+8, 2t+8..). B (16x8, k x n): b0 = (k 2t..2t+1, n g), b1 = (k 2t+8.., n g).
// C (16x8): c0, c1 = (g, 2t..2t+1), c2, c3 = (g+8, 2t..2t+1). A pair of bf16 in one register: the lower column in the
// low half. Tiles stored with a row stride of (multiple of 8) + 8 elements put the 8 rows x 4 words of a fragment
// load in 32 different banks.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <type_traits>

#include "cuda/common.cuh"
#include "cuda/fast_math.cuh"

namespace gdn2::cuda {

using bf16 = __nv_bfloat16;

// d += a · b on the tensor cores, T = bf16 or __half (16-bit inputs), fp32 accumulation.
template <class T = bf16>
__device__ __forceinline__ void mma16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  if constexpr (std::is_same_v<T, bf16>)
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  else
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// tf32 m16n8k8 (fp32 in shared memory, rounded to tf32; fp32 accumulate). A: a0 = (g, t), a1 = (g+8, t),
// a2 = (g, t+4), a3 = (g+8, t+4); B: b0 = (k t, n g), b1 = (k t+4, n g); C as for m16n8k16.
__device__ __forceinline__ uint32_t tf32(float x) {
  uint32_t r;
  asm("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(r) : "f"(x));
  return r;
}
__device__ __forceinline__ void mma_tf32_1688(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
  asm volatile(
      "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}
// acc[nt] (16 x 16 in two n-tiles) += M1[r1.., k1..k1+16) · M2[k2..k2+16, n2..n2+16), fp32 row-major tiles.
__device__ __forceinline__ void mma_tf32_16x16x16(float (&acc)[2][4], const float* m1, int ld1, int r1, int k1,
                                                  const float* m2, int ld2, int k2, int n2, int lane) {
  const int g = lane >> 2, t = lane & 3;
#pragma unroll
  for (int ks = 0; ks < 16; ks += 8) {
    const float* a = m1 + (r1 + g) * ld1 + k1 + ks + t;
    const uint32_t af[4] = {tf32(a[0]), tf32(a[8 * ld1]), tf32(a[4]), tf32(a[8 * ld1 + 4])};
#pragma unroll
    for (int nt = 0; nt < 2; ++nt) {
      const float* b = m2 + (k2 + ks + t) * ld2 + n2 + 8 * nt + g;
      const uint32_t bf[2] = {tf32(b[0]), tf32(b[4 * ld2])};
      mma_tf32_1688(acc[nt], af, bf);
    }
  }
}

// 3xTF32, fp32-level accuracy on tf32 tensor cores: x = hi + lo with hi = x rounded to tf32 (low 13 bits cleared)
// and lo = tf32(x - hi); a·b accumulates as lo_a·hi_b + hi_a·lo_b + hi_a·hi_b (lo_a·lo_b, 2^-22 relative, dropped).
__device__ __forceinline__ void split_tf32(float x, uint32_t& hi, uint32_t& lo) {
  hi = tf32(x) & 0xffffe000u;
  lo = tf32(x - __uint_as_float(hi));
}

// acc[nt] += A[r0..r0+16, k0..k0+8·k_steps) · B[k0..k0+8·k_steps, n0 + 8·nt..+8) for nt < NT, in 3xTF32, the fp32
// elements read through a(r, k) and b(k, n) (shared-memory tiles in either orientation, or formed on the fly).
template <int NT, class A, class B>
__device__ __forceinline__ void mma3_rows(float (&acc)[NT][4], A&& a, B&& b, int r0, int n0, int k0, int k_steps,
                                          int lane) {
  const int g = lane >> 2, t = lane & 3, r = r0 + g;
#pragma unroll 2
  for (int kk = 0; kk < k_steps; ++kk) {
    const int k = k0 + 8 * kk + t;
    uint32_t ah[4], al[4];
    split_tf32(a(r, k), ah[0], al[0]);
    split_tf32(a(r + 8, k), ah[1], al[1]);
    split_tf32(a(r, k + 4), ah[2], al[2]);
    split_tf32(a(r + 8, k + 4), ah[3], al[3]);
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) {
      const int n = n0 + 8 * nt + g;
      uint32_t bh[2], bl[2];
      split_tf32(b(k, n), bh[0], bl[0]);
      split_tf32(b(k + 4, n), bh[1], bl[1]);
      mma_tf32_1688(acc[nt], al, bh);
      mma_tf32_1688(acc[nt], ah, bl);
      mma_tf32_1688(acc[nt], ah, bh);
    }
  }
}

// An fp32 operand element as the tf32 tensor cores take it: its bits as they are, the low 13 mantissa bits ignored
// (truncation toward zero, relative error below 2^-10; NaN and infinity stay as they are). No conversion instruction.
__device__ __forceinline__ uint32_t tf32_bits(float x) { return __float_as_uint(x); }

// The A fragment (rows r, r + 8; columns k, k + 4) of an m16n8k8 tf32 product, read through a(row, column).
template <class A>
__device__ __forceinline__ void tf32_frag_a(uint32_t (&f)[4], A&& a, int r, int k) {
  f[0] = tf32_bits(a(r, k)), f[1] = tf32_bits(a(r + 8, k)), f[2] = tf32_bits(a(r, k + 4));
  f[3] = tf32_bits(a(r + 8, k + 4));
}

// Two products sharing their B operand in one tf32 pass (tf32_bits: the bf16-input paths, fp32 accumulation):
// acc1[nt] += A1[r0..r0+16, k0..k0+8·k_steps) · B[.., n0 + 8·nt..+8) and acc2[nt] += A2 · B for nt < NT, the fp32
// elements read through a1(r, k), a2(r, k) and b(k, n) (shared-memory tiles in either orientation, or formed on the fly).
template <int NT, class A1, class A2, class B>
__device__ __forceinline__ void mma1_rows2(float (&acc1)[NT][4], float (&acc2)[NT][4], A1&& a1, A2&& a2, B&& b, int r0,
                                           int n0, int k0, int k_steps, int lane) {
  const int g = lane >> 2, t = lane & 3, r = r0 + g;
#pragma unroll 1
  for (int kk = 0; kk < k_steps; ++kk) {
    const int k = k0 + 8 * kk + t;
    uint32_t f1[4], f2[4];
    tf32_frag_a(f1, a1, r, k);
    tf32_frag_a(f2, a2, r, k);
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) {
      const int n = n0 + 8 * nt + g;
      const uint32_t bf[2] = {tf32_bits(b(k, n)), tf32_bits(b(k + 4, n))};
      mma_tf32_1688(acc1[nt], f1, bf);
      mma_tf32_1688(acc2[nt], f2, bf);
    }
  }
}

// One sum of two products in one tf32 pass: acc[nt] += A1 · B1 + A2 · B2, B1's and B2's elements formed together by
// b(k, n) (a float2: B1's, then B2's), for operands that share a factor.
template <int NT, class A1, class A2, class B>
__device__ __forceinline__ void mma1_rows_sum2(float (&acc)[NT][4], A1&& a1, A2&& a2, B&& b, int r0, int n0, int k0,
                                               int k_steps, int lane) {
  const int g = lane >> 2, t = lane & 3, r = r0 + g;
#pragma unroll 1
  for (int kk = 0; kk < k_steps; ++kk) {
    const int k = k0 + 8 * kk + t;
    uint32_t f1[4], f2[4];
    tf32_frag_a(f1, a1, r, k);
    tf32_frag_a(f2, a2, r, k);
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) {
      const int n = n0 + 8 * nt + g;
      const float2 x0 = b(k, n), x1 = b(k + 4, n);
      const uint32_t b1[2] = {tf32_bits(x0.x), tf32_bits(x1.x)}, b2[2] = {tf32_bits(x0.y), tf32_bits(x1.y)};
      mma_tf32_1688(acc[nt], f1, b1);
      mma_tf32_1688(acc[nt], f2, b2);
    }
  }
}

// The accumulator element h of n-tile nt of a warp's 16-row tile at (r0, n0): its row and column.
__device__ __forceinline__ int acc_row(int r0, int lane, int h) { return r0 + (lane >> 2) + 8 * (h >> 1); }
__device__ __forceinline__ int acc_col(int n0, int lane, int nt, int h) { return n0 + 8 * nt + 2 * (lane & 3) + (h & 1); }

// Two floats rounded to T (bf16 or __half), lo in the low half.
template <class T = bf16>
__device__ __forceinline__ uint32_t pack2(float lo, float hi) {
  if constexpr (std::is_same_v<T, bf16>) {
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<uint32_t*>(&v);
  } else {
    __half2 v = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<uint32_t*>(&v);
  }
}

__device__ __forceinline__ float2 unpack_bf16(uint32_t x) {
  __nv_bfloat162 v = *reinterpret_cast<__nv_bfloat162*>(&x);
  return __bfloat1622float2(v);
}

__device__ __forceinline__ uint32_t ld_pair(const bf16* p) { return *reinterpret_cast<const uint32_t*>(p); }

// A fragment of rows [row0, row0+16) and columns [k0, k0+16) of a row-major tile with row stride ld.
__device__ __forceinline__ void load_a(uint32_t (&a)[4], const bf16* tile, int ld, int row0, int k0, int lane) {
  const int g = lane >> 2, t = lane & 3;
  const bf16* p = tile + (row0 + g) * ld + k0 + 2 * t;
  a[0] = ld_pair(p);
  a[1] = ld_pair(p + 8 * ld);
  a[2] = ld_pair(p + 8);
  a[3] = ld_pair(p + 8 * ld + 8);
}

// B fragment (k in [k0, k0+16), n in [n0, n0+8)) of a matrix stored transposed: tile[n][k], row stride ld.
__device__ __forceinline__ void load_b(uint32_t (&b)[2], const bf16* tile_t, int ld, int n0, int k0, int lane) {
  const int g = lane >> 2, t = lane & 3;
  const bf16* p = tile_t + (n0 + g) * ld + k0 + 2 * t;
  b[0] = ld_pair(p);
  b[1] = ld_pair(p + 8);
}

// acc[nt] += A[row0 .. row0+16, 0 .. 16·k_steps) · B[0 .. 16·k_steps, n0 + 8·nt .. +8) for nt < NT: A row-major
// (stride lda), B stored transposed (bt[n][k], stride ldb). Fully unrolled when k_steps is a compile-time constant.
template <int NT>
__device__ __forceinline__ void mma_rows(float (&acc)[NT][4], const bf16* a_tile, int lda, int row0, const bf16* bt,
                                         int ldb, int n0, int k_steps, int lane) {
#pragma unroll
  for (int kk = 0; kk < k_steps; ++kk) {
    uint32_t a[4];
    load_a(a, a_tile, lda, row0, 16 * kk, lane);
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) {
      uint32_t b[2];
      load_b(b, bt, ldb, n0 + 8 * nt, 16 * kk, lane);
      mma16816(acc[nt], a, b[0], b[1]);
    }
  }
}

// Shared-memory asm carries a "memory" clobber so the compiler keeps it on its side of every barrier.
// ldmatrix: lane l gives the address of row l % 8 of 8x8 matrix l / 8; each register receives one matrix in mma
// fragment order (with .trans, the transposed matrix).
template <bool Trans = false>
__device__ __forceinline__ void ldsm_x4(uint32_t (&r)[4], const void* p) {
  const uint32_t s = static_cast<uint32_t>(__cvta_generic_to_shared(p));
  if constexpr (Trans)
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(s)
                 : "memory");
  else
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(s)
                 : "memory");
}

// A fragment (rows row0..+16, columns k0..+16) of a row-major tile of 16-bit elements T, by ldmatrix.
template <class T>
__device__ __forceinline__ void ldsm_a(uint32_t (&a)[4], const T* tile, int ld, int row0, int k0, int lane) {
  const int m = lane >> 3, r = lane & 7;
  ldsm_x4(a, tile + (row0 + r + 8 * (m & 1)) * ld + k0 + 8 * (m >> 1));
}
// The same A fragment of a tile stored transposed: A(r, k) = tile[k][r].
template <class T>
__device__ __forceinline__ void ldsm_a_t(uint32_t (&a)[4], const T* tile, int ld, int row0, int k0, int lane) {
  const int m = lane >> 3, r = lane & 7;
  ldsm_x4<true>(a, tile + (k0 + r + 8 * (m >> 1)) * ld + row0 + 8 * (m & 1));
}
// B fragments of two n-tiles (n0..+8 in b[0..1], n0+8..+16 in b[2..3]; k0..+16) of a matrix stored as tile[n][k].
template <class T>
__device__ __forceinline__ void ldsm_b_nk(uint32_t (&b)[4], const T* tile, int ld, int n0, int k0, int lane) {
  const int m = lane >> 3, r = lane & 7;
  ldsm_x4(b, tile + (n0 + r + 8 * (m >> 1)) * ld + k0 + 8 * (m & 1));
}
// The same two n-tiles of a matrix stored as tile[k][n] (row-major k x n).
template <class T>
__device__ __forceinline__ void ldsm_b_kn(uint32_t (&b)[4], const T* tile, int ld, int n0, int k0, int lane) {
  const int m = lane >> 3, r = lane & 7;
  ldsm_x4<true>(b, tile + (k0 + r + 8 * (m & 1)) * ld + n0 + 8 * (m >> 1));
}

// acc[nt] += A[row0..+16, 0..16·k_steps) · B[0..16·k_steps, n0 + 8·nt..+8) for nt < NT (NT even), both from shared
// memory by ldmatrix: A row-major (stride lda), B row-major k x n (stride ldb). The k loop stays rolled.
template <int NT>
__device__ __forceinline__ void mma_rows_kn(float (&acc)[NT][4], const bf16* a_tile, int lda, int row0, const bf16* b,
                                            int ldb, int n0, int k_steps, int lane) {
#pragma unroll 1
  for (int kk = 0; kk < k_steps; ++kk) {
    uint32_t a[4];
    ldsm_a(a, a_tile, lda, row0, 16 * kk, lane);
#pragma unroll
    for (int nt = 0; nt < NT; nt += 2) {
      uint32_t bb[4];
      ldsm_b_kn(bb, b, ldb, n0 + 8 * nt, 16 * kk, lane);
      mma16816(acc[nt], a, bb[0], bb[1]);
      mma16816(acc[nt + 1], a, bb[2], bb[3]);
    }
  }
}

// acc[nt] += A[row0..+16, k0..k0+16·k_steps) · B[k0.., n0 + 8·nt..+8) for nt < NT (NT even), 16-bit operands from
// shared memory by ldmatrix: A stored row-major (a[r][k]) or, with AT, transposed (a[k][r]); B stored k x n (b[k][n])
// or, with BNK, n x k (b[n][k]). Row and column offsets and strides are multiples of 8 elements.
template <int NT, bool AT, bool BNK, class T>
__device__ __forceinline__ void mma_smem(float (&acc)[NT][4], const T* a, int lda, int row0, const T* b, int ldb,
                                         int n0, int k0, int k_steps, int lane) {
  static_assert(NT % 2 == 0, "n-tiles come in pairs");
#pragma unroll 2
  for (int kk = 0; kk < k_steps; ++kk) {
    const int k = k0 + 16 * kk;
    uint32_t af[4];
    if constexpr (AT)
      ldsm_a_t(af, a, lda, row0, k, lane);
    else
      ldsm_a(af, a, lda, row0, k, lane);
#pragma unroll
    for (int nt = 0; nt < NT; nt += 2) {
      uint32_t bb[4];
      if constexpr (BNK)
        ldsm_b_nk(bb, b, ldb, n0 + 8 * nt, k, lane);
      else
        ldsm_b_kn(bb, b, ldb, n0 + 8 * nt, k, lane);
      mma16816<T>(acc[nt], af, bb[0], bb[1]);
      mma16816<T>(acc[nt + 1], af, bb[2], bb[3]);
    }
  }
}

// A warp's accumulator tile (rows r0..+16, columns n0..+8·NT) into a 16-bit tile (row stride ld), element pairs as
// one 32-bit store, each element through f(row, column, value) first.
template <int NT, class T = bf16, class F>
__device__ __forceinline__ void store_acc(T* tile, int ld, const float (&acc)[NT][4], int r0, int n0, int lane, F&& f) {
#pragma unroll
  for (int nt = 0; nt < NT; ++nt)
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int r = acc_row(r0, lane, 2 * half), c = acc_col(n0, lane, nt, 0);
      *reinterpret_cast<uint32_t*>(tile + r * ld + c) =
          pack2<T>(f(r, c, acc[nt][2 * half]), f(r, c + 1, acc[nt][2 * half + 1]));
    }
}

// The same with the accumulator values as they are.
template <int NT, class T = bf16>
__device__ __forceinline__ void store_acc(T* tile, int ld, const float (&acc)[NT][4], int r0, int n0, int lane) {
  store_acc<NT, T>(tile, ld, acc, r0, n0, lane, [](int, int, float x) { return x; });
}

template <int NT>
__device__ __forceinline__ void zero(float (&acc)[NT][4]) {
#pragma unroll
  for (int nt = 0; nt < NT; ++nt) acc[nt][0] = acc[nt][1] = acc[nt][2] = acc[nt][3] = 0.f;
}

__device__ __forceinline__ void cp_async_16(void* smem, const void* gmem) {
  const uint32_t s = static_cast<uint32_t>(__cvta_generic_to_shared(smem));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(s), "l"(gmem) : "memory");
}
__device__ __forceinline__ void cp_async_4(void* smem, const void* gmem) {
  const uint32_t s = static_cast<uint32_t>(__cvta_generic_to_shared(smem));
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4;\n" ::"r"(s), "l"(gmem) : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

}  // namespace gdn2::cuda
