// Typed element access for kernels whose element type T is a template parameter (float, __nv_bfloat16 or __half):
// conversions to and from fp32, and N adjacent elements (N = 2, 4 or 8) in one access, two for eight fp32.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <type_traits>

namespace gdn2::cuda {

// A tag that carries an element type to a generic lambda: f(Type<T>{}), then typename decltype(tag)::type.
template <class T>
struct Type {
  using type = T;
};

template <class T>
__device__ __forceinline__ float to_f32(T x) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>)
    return __bfloat162float(x);
  else if constexpr (std::is_same_v<T, __half>)
    return __half2float(x);
  else
    return x;
}

template <class T>
__device__ __forceinline__ T from_f32(float x) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>)
    return __float2bfloat16_rn(x);
  else if constexpr (std::is_same_v<T, __half>)
    return __float2half_rn(x);
  else
    return x;
}

// N elements of T as loaded and not yet converted, in 32-bit words (two 16-bit elements a word, the lower element in
// the low half): a load stays in flight until its registers are first used, so a pack can be fetched one step ahead
// and converted (unpack) when its step comes.
template <class T, int N>
struct alignas(sizeof(T) * N) Pack {
  static_assert(N == 2 || N == 4 || N == 8, "packs of 2, 4 or 8 elements");
  static constexpr int kWords = N * static_cast<int>(sizeof(T)) / 4;
  uint32_t w[kWords];
};

// p[0 .. N) in one access (p aligned to N elements; two accesses for eight fp32).
template <class T, int N>
__device__ __forceinline__ Pack<T, N> load_pack(const T* p) {
  return *reinterpret_cast<const Pack<T, N>*>(p);
}

// The pack's elements as floats.
template <class T, int N>
__device__ __forceinline__ void unpack(const Pack<T, N>& pk, float (&v)[N]) {
#pragma unroll
  for (int i = 0; i < Pack<T, N>::kWords; ++i) {
    const uint32_t u = pk.w[i];
    if constexpr (std::is_same_v<T, float>) {
      v[i] = __uint_as_float(u);
    } else if constexpr (std::is_same_v<T, __nv_bfloat16>) {  // a bf16 is the high half of its fp32
      v[2 * i] = __uint_as_float(u << 16), v[2 * i + 1] = __uint_as_float(u & 0xffff0000u);
    } else {
      __half2 h;
      memcpy(&h, &u, 4);
      const float2 f = __half22float2(h);
      v[2 * i] = f.x, v[2 * i + 1] = f.y;
    }
  }
}

// p[0 .. N) as floats (p aligned to N elements).
template <class T, int N>
__device__ __forceinline__ void load_vec(const T* p, float (&v)[N]) {
  unpack(load_pack<T, N>(p), v);
}

// v rounded to T as a pack.
template <class T, int N>
__device__ __forceinline__ Pack<T, N> pack(const float (&v)[N]) {
  Pack<T, N> pk;
#pragma unroll
  for (int i = 0; i < Pack<T, N>::kWords; ++i) {
    if constexpr (std::is_same_v<T, float>) {
      pk.w[i] = __float_as_uint(v[i]);
    } else if constexpr (std::is_same_v<T, __nv_bfloat16>) {
      const __nv_bfloat162 h = __floats2bfloat162_rn(v[2 * i], v[2 * i + 1]);
      memcpy(&pk.w[i], &h, 4);
    } else {
      const __half2 h = __floats2half2_rn(v[2 * i], v[2 * i + 1]);
      memcpy(&pk.w[i], &h, 4);
    }
  }
  return pk;
}

// p[0 .. N) = v rounded to T (p aligned to N elements).
template <class T, int N>
__device__ __forceinline__ void store_vec(T* p, const float (&v)[N]) {
  *reinterpret_cast<Pack<T, N>*>(p) = pack<T, N>(v);
}

}  // namespace gdn2::cuda
