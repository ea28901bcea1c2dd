// DType tables and IEEE half-precision conversion.
#include "gdn2/dtype.h"

#include <cmath>

namespace gdn2 {

namespace {
struct DTypeInfo {
  DType dt;
  std::string_view name;
  size_t size;
};
constexpr DTypeInfo kInfo[] = {
    {DType::f64, "F64", 8}, {DType::f32, "F32", 4}, {DType::f16, "F16", 2}, {DType::bf16, "BF16", 2},
    {DType::i64, "I64", 8}, {DType::i32, "I32", 4}, {DType::i16, "I16", 2}, {DType::i8, "I8", 1},
    {DType::u8, "U8", 1},   {DType::boolean, "BOOL", 1},
};
}  // namespace

size_t dtype_size(DType dt) { return kInfo[static_cast<int>(dt)].size; }
std::string_view dtype_name(DType dt) { return kInfo[static_cast<int>(dt)].name; }

std::optional<DType> dtype_from_name(std::string_view name) {
  for (const auto& i : kInfo)
    if (i.name == name) return i.dt;
  return std::nullopt;
}

float f16_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  const uint32_t man = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0) {
    if (man == 0) {
      bits = sign;
    } else {  // subnormal half: value = man * 2^-24
      float f = std::ldexp(static_cast<float>(man), -24);
      std::memcpy(&bits, &f, 4);
      bits |= sign;
    }
  } else if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (man << 13) | (man ? 0x00400000u : 0u);
  } else {
    bits = sign | ((exp + 112u) << 23) | (man << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t f32_to_f16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  const uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000u);
  const uint32_t absbits = bits & 0x7fffffffu;
  if (absbits >= 0x7f800000u) return sign | 0x7c00u | (absbits > 0x7f800000u ? 0x200u : 0u);  // inf / NaN
  if (absbits >= 0x477ff000u) return sign | 0x7c00u;  // rounds to >= 65520: overflow
  if (absbits < 0x38800000u) {                        // below the smallest normal half: subnormal or zero
    float a;
    std::memcpy(&a, &absbits, 4);
    const float scaled = a * 16777216.0f;  // a / 2^-24, exact in fp32
    return sign | static_cast<uint16_t>(std::nearbyint(scaled));
  }
  uint32_t rounded = absbits + 0xfffu + ((absbits >> 13) & 1u);  // round to nearest even at bit 13
  return sign | static_cast<uint16_t>((rounded - 0x38000000u) >> 13);
}

}  // namespace gdn2

namespace gdn2 {

namespace {
template <class T>
double read_as_double(const void* p, size_t i) {
  T v;
  std::memcpy(&v, static_cast<const std::byte*>(p) + i * sizeof(T), sizeof(T));
  return static_cast<double>(v);
}
double read_element(const void* p, DType dt, size_t i) {
  switch (dt) {
    case DType::f64: return read_as_double<double>(p, i);
    case DType::f32: return read_as_double<float>(p, i);
    case DType::f16: return f16_to_f32(static_cast<uint16_t>(read_as_double<uint16_t>(p, i)));
    case DType::bf16: return bf16_to_f32(static_cast<uint16_t>(read_as_double<uint16_t>(p, i)));
    case DType::i64: return read_as_double<int64_t>(p, i);
    case DType::i32: return read_as_double<int32_t>(p, i);
    case DType::i16: return read_as_double<int16_t>(p, i);
    case DType::i8: return read_as_double<int8_t>(p, i);
    case DType::u8: return read_as_double<uint8_t>(p, i);
    case DType::boolean: return read_as_double<uint8_t>(p, i) != 0 ? 1.0 : 0.0;
  }
  return 0.0;
}
template <class T>
void write_as(void* p, size_t i, T v) {
  std::memcpy(static_cast<std::byte*>(p) + i * sizeof(T), &v, sizeof(T));
}
void write_element(void* p, DType dt, size_t i, double v) {
  switch (dt) {
    case DType::f64: write_as<double>(p, i, v); break;
    case DType::f32: write_as<float>(p, i, static_cast<float>(v)); break;
    case DType::f16: write_as<uint16_t>(p, i, f32_to_f16(static_cast<float>(v))); break;
    case DType::bf16: write_as<uint16_t>(p, i, f32_to_bf16(static_cast<float>(v))); break;
    case DType::i64: write_as<int64_t>(p, i, static_cast<int64_t>(v)); break;
    case DType::i32: write_as<int32_t>(p, i, static_cast<int32_t>(v)); break;
    case DType::i16: write_as<int16_t>(p, i, static_cast<int16_t>(v)); break;
    case DType::i8: write_as<int8_t>(p, i, static_cast<int8_t>(v)); break;
    case DType::u8: write_as<uint8_t>(p, i, static_cast<uint8_t>(v)); break;
    case DType::boolean: write_as<uint8_t>(p, i, v != 0.0 ? 1 : 0); break;
  }
}
}  // namespace

void dtype_convert(const void* src, DType src_dt, void* dst, DType dst_dt, size_t n) {
  if (src_dt == dst_dt) {
    std::memcpy(dst, src, n * dtype_size(src_dt));
    return;
  }
  // Fast paths for the conversions the kernels do per row.
  if (dst_dt == DType::f32 && src_dt == DType::bf16) {
    const auto* s = static_cast<const uint16_t*>(src);
    auto* d = static_cast<float*>(dst);
    for (size_t i = 0; i < n; ++i) d[i] = bf16_to_f32(s[i]);
    return;
  }
  if (dst_dt == DType::f64 && src_dt == DType::f32) {
    const auto* s = static_cast<const float*>(src);
    auto* d = static_cast<double*>(dst);
    for (size_t i = 0; i < n; ++i) d[i] = s[i];
    return;
  }
  if (dst_dt == DType::f32 && src_dt == DType::f64) {
    const auto* s = static_cast<const double*>(src);
    auto* d = static_cast<float*>(dst);
    for (size_t i = 0; i < n; ++i) d[i] = static_cast<float>(s[i]);
    return;
  }
  for (size_t i = 0; i < n; ++i) write_element(dst, dst_dt, i, read_element(src, src_dt, i));
}

}  // namespace gdn2
