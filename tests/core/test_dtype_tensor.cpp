// Tests of dtype conversion (bf16/f16 rounding, NaN/inf, subnormals) and of Tensor views, conversion and comparison.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "gdn2/dtype.h"
#include "gdn2/tensor.h"

namespace {

using gdn2::DType;
using gdn2::Tensor;

float from_bits(uint32_t b) {
  float f;
  std::memcpy(&f, &b, 4);
  return f;
}
uint32_t to_bits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}

// Round-to-nearest-even reference for f32 -> bf16 on finite inputs, by exact comparison in double.
uint16_t bf16_reference(float f) {
  const uint32_t bits = to_bits(f);
  const uint16_t lo = static_cast<uint16_t>(bits >> 16);  // truncation toward zero
  if ((bits & 0xffffu) == 0) return lo;
  const uint16_t hi = static_cast<uint16_t>(lo + 1);      // next in magnitude (may be infinity)
  const double x = std::fabs(static_cast<double>(f));
  const double a = std::fabs(static_cast<double>(gdn2::bf16_to_f32(lo)));
  // Past the largest finite bf16 the next step is 2^128 (infinity), as IEEE rounding defines it.
  const double b = (hi & 0x7f80u) == 0x7f80u ? 0x1p128 : std::fabs(static_cast<double>(gdn2::bf16_to_f32(hi)));
  const double da = x - a, db = b - x;  // exact: all three are floats, differences fit a double
  if (da < db) return lo;
  if (db < da) return hi;
  return (lo & 1u) ? hi : lo;
}

TEST(DType, NamesAndSizes) {
  for (DType dt : {DType::f64, DType::f32, DType::f16, DType::bf16, DType::i64, DType::i32, DType::i16, DType::i8,
                   DType::u8, DType::boolean}) {
    const auto back = gdn2::dtype_from_name(gdn2::dtype_name(dt));
    ASSERT_TRUE(back.has_value());
    EXPECT_EQ(*back, dt);
  }
  EXPECT_EQ(gdn2::dtype_size(DType::bf16), 2u);
  EXPECT_EQ(gdn2::dtype_size(DType::f64), 8u);
  EXPECT_EQ(gdn2::dtype_size(DType::boolean), 1u);
  EXPECT_FALSE(gdn2::dtype_from_name("f32").has_value());  // names are case-sensitive
  EXPECT_FALSE(gdn2::dtype_from_name("F8_E4M3").has_value());
}

TEST(Bf16, ExactValuesAndSpecials) {
  EXPECT_EQ(gdn2::f32_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(gdn2::f32_to_bf16(-2.0f), 0xc000);
  EXPECT_EQ(gdn2::f32_to_bf16(0.0f), 0x0000);
  EXPECT_EQ(gdn2::f32_to_bf16(-0.0f), 0x8000);
  EXPECT_EQ(gdn2::bf16_to_f32(0x3f80), 1.0f);
  EXPECT_EQ(gdn2::f32_to_bf16(std::numeric_limits<float>::infinity()), 0x7f80);
  EXPECT_EQ(gdn2::f32_to_bf16(-std::numeric_limits<float>::infinity()), 0xff80);
  EXPECT_EQ(gdn2::f32_to_bf16(std::numeric_limits<float>::max()), 0x7f80);  // rounds up to infinity
  // NaNs stay NaN, including signalling ones whose payload lives only in the low bits.
  for (uint32_t nan_bits : {0x7fc00000u, 0x7f800001u, 0xff800001u, 0x7fffffffu}) {
    const uint16_t h = gdn2::f32_to_bf16(from_bits(nan_bits));
    EXPECT_TRUE(std::isnan(gdn2::bf16_to_f32(h))) << std::hex << nan_bits;
    EXPECT_EQ(h & 0x8000u, (nan_bits >> 16) & 0x8000u);
  }
}

TEST(Bf16, RoundsToNearestEven) {
  EXPECT_EQ(gdn2::f32_to_bf16(1.0f + 0x1p-8f), 0x3f80);            // tie, even is down
  EXPECT_EQ(gdn2::f32_to_bf16(1.0f + 3 * 0x1p-8f), 0x3f82);        // tie, even is up
  EXPECT_EQ(gdn2::f32_to_bf16(1.0f + 0x1p-8f + 0x1p-20f), 0x3f81);  // just above the tie
  EXPECT_EQ(gdn2::f32_to_bf16(1.0f + 0x1p-8f - 0x1p-20f), 0x3f80);  // just below
  // Subnormals: bf16 shares fp32's exponent range; its smallest subnormal is 2^-133.
  EXPECT_EQ(gdn2::f32_to_bf16(0x1p-133f), 0x0001);
  EXPECT_EQ(gdn2::f32_to_bf16(0x1p-134f), 0x0000);      // tie to even (zero)
  EXPECT_EQ(gdn2::f32_to_bf16(3 * 0x1p-134f), 0x0002);  // tie to even (up)
  EXPECT_EQ(gdn2::bf16_to_f32(0x0001), 0x1p-133f);

  std::mt19937 rng(7);
  for (int i = 0; i < 200000; ++i) {
    const float f = from_bits(static_cast<uint32_t>(rng()));
    if (!std::isfinite(f)) continue;
    ASSERT_EQ(gdn2::f32_to_bf16(f), bf16_reference(f)) << std::hexfloat << f;
  }
}

TEST(Bf16, EveryValueRoundTrips) {
  for (uint32_t h = 0; h <= 0xffffu; ++h) {
    const float f = gdn2::bf16_to_f32(static_cast<uint16_t>(h));
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(gdn2::bf16_to_f32(gdn2::f32_to_bf16(f))));
      continue;
    }
    ASSERT_EQ(gdn2::f32_to_bf16(f), h) << std::hex << h;
  }
}

TEST(F16, ExactValuesAndSpecials) {
  EXPECT_EQ(gdn2::f32_to_f16(1.0f), 0x3c00);
  EXPECT_EQ(gdn2::f32_to_f16(-2.0f), 0xc000);
  EXPECT_EQ(gdn2::f32_to_f16(-0.0f), 0x8000);
  EXPECT_EQ(gdn2::f32_to_f16(65504.0f), 0x7bff);  // largest finite half
  EXPECT_EQ(gdn2::f32_to_f16(65519.0f), 0x7bff);
  EXPECT_EQ(gdn2::f32_to_f16(65520.0f), 0x7c00);  // the tie rounds to even: infinity
  EXPECT_EQ(gdn2::f32_to_f16(1e10f), 0x7c00);
  EXPECT_EQ(gdn2::f32_to_f16(-1e10f), 0xfc00);
  EXPECT_EQ(gdn2::f32_to_f16(std::numeric_limits<float>::infinity()), 0x7c00);
  EXPECT_EQ(gdn2::f16_to_f32(0x7c00), std::numeric_limits<float>::infinity());
  EXPECT_EQ(gdn2::f16_to_f32(0xfc00), -std::numeric_limits<float>::infinity());
  for (uint32_t nan_bits : {0x7fc00000u, 0x7f800001u, 0xffc00000u}) {
    const uint16_t h = gdn2::f32_to_f16(from_bits(nan_bits));
    EXPECT_TRUE(std::isnan(gdn2::f16_to_f32(h))) << std::hex << nan_bits;
  }
  EXPECT_TRUE(std::isnan(gdn2::f16_to_f32(0x7c01)));  // signalling half NaN stays NaN
}

TEST(F16, RoundingAndSubnormals) {
  EXPECT_EQ(gdn2::f32_to_f16(1.0f + 0x1p-11f), 0x3c00);      // tie, even is down
  EXPECT_EQ(gdn2::f32_to_f16(1.0f + 3 * 0x1p-11f), 0x3c02);  // tie, even is up
  EXPECT_EQ(gdn2::f32_to_f16(0x1p-14f), 0x0400);             // smallest normal
  EXPECT_EQ(gdn2::f32_to_f16(0x1p-24f), 0x0001);             // smallest subnormal
  EXPECT_EQ(gdn2::f32_to_f16(1023 * 0x1p-24f), 0x03ff);      // largest subnormal
  EXPECT_EQ(gdn2::f32_to_f16(0x1p-25f), 0x0000);             // tie to even (zero)
  EXPECT_EQ(gdn2::f32_to_f16(-0x1p-25f), 0x8000);
  EXPECT_EQ(gdn2::f32_to_f16(1.5f * 0x1p-24f), 0x0002);      // tie to even (up)
  EXPECT_EQ(gdn2::f32_to_f16(2.5f * 0x1p-24f), 0x0002);      // tie to even (down)
  EXPECT_EQ(gdn2::f32_to_f16(0x1p-26f), 0x0000);
  EXPECT_EQ(gdn2::f32_to_f16(0x1p-14f - 0x1p-30f), 0x0400);  // rounds up across the subnormal boundary
  EXPECT_EQ(gdn2::f16_to_f32(0x0001), 0x1p-24f);
  EXPECT_EQ(gdn2::f16_to_f32(0x83ff), -1023 * 0x1p-24f);
}

TEST(F16, EveryValueRoundTrips) {
  for (uint32_t h = 0; h <= 0xffffu; ++h) {
    const float f = gdn2::f16_to_f32(static_cast<uint16_t>(h));
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(gdn2::f16_to_f32(gdn2::f32_to_f16(f))));
      continue;
    }
    ASSERT_EQ(gdn2::f32_to_f16(f), h) << std::hex << h;
  }
}

#ifdef __FLT16_MAX__
// The compiler's own float -> _Float16 conversion (round to nearest even) as an oracle.
TEST(F16, AgreesWithCompilerFloat16) {
  std::mt19937 rng(11);
  for (int i = 0; i < 200000; ++i) {
    const float f = from_bits(static_cast<uint32_t>(rng()));
    if (std::isnan(f)) continue;
    const _Float16 h = static_cast<_Float16>(f);
    uint16_t want;
    std::memcpy(&want, &h, 2);
    ASSERT_EQ(gdn2::f32_to_f16(f), want) << std::hexfloat << f;
  }
  // Every midpoint between adjacent halves, where ties are decided.
  for (uint32_t h = 0; h < 0x7bffu; ++h) {
    const float a = gdn2::f16_to_f32(static_cast<uint16_t>(h)), b = gdn2::f16_to_f32(static_cast<uint16_t>(h + 1));
    const float mid = static_cast<float>((static_cast<double>(a) + b) / 2);  // exact in fp32
    const _Float16 ref = static_cast<_Float16>(mid);
    uint16_t want;
    std::memcpy(&want, &ref, 2);
    ASSERT_EQ(gdn2::f32_to_f16(mid), want) << h;
  }
}
#endif

TEST(DTypeConvert, BetweenTypes) {
  const std::vector<double> v = {1.5, -2.0, 0.0, 100.0};
  std::vector<float> f(4);
  gdn2::dtype_convert(v.data(), DType::f64, f.data(), DType::f32, 4);
  EXPECT_EQ(f, (std::vector<float>{1.5f, -2.0f, 0.0f, 100.0f}));
  std::vector<int32_t> i(4);
  gdn2::dtype_convert(v.data(), DType::f64, i.data(), DType::i32, 4);
  EXPECT_EQ(i, (std::vector<int32_t>{1, -2, 0, 100}));
  std::vector<uint8_t> b(4);
  gdn2::dtype_convert(v.data(), DType::f64, b.data(), DType::boolean, 4);
  EXPECT_EQ(b, (std::vector<uint8_t>{1, 1, 0, 1}));
}

TEST(Tensor, FactoriesAndAccess) {
  Tensor t = Tensor::full({2, 3}, DType::f32, 2.5);
  EXPECT_TRUE(t.defined());
  EXPECT_EQ(t.describe(), "F32[2, 3]");
  EXPECT_EQ(t.numel(), 6);
  EXPECT_EQ(t.nbytes(), 24u);
  EXPECT_EQ(t.size(-1), 3);
  EXPECT_THROW(t.size(2), gdn2::ShapeError);
  EXPECT_EQ(t.item(5), 2.5);
  EXPECT_THROW(t.item(6), gdn2::ShapeError);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(t.raw()) % 64, 0u);
  EXPECT_THROW(t.data<double>(), gdn2::DTypeError);
  EXPECT_FALSE(Tensor().defined());
  EXPECT_EQ(Tensor().describe(), "undefined");
  const Tensor scalar = Tensor::full({}, DType::bf16, 3.0);
  EXPECT_EQ(scalar.numel(), 1);
  EXPECT_EQ(scalar.item(0), 3.0);
  EXPECT_EQ(Tensor::zeros({0, 4}, DType::i64).numel(), 0);
  EXPECT_THROW(Tensor::from_vector<float>({3}, {1.0f, 2.0f}), gdn2::ShapeError);
  EXPECT_THROW(gdn2::shape_numel({2, -1}), gdn2::ValueError);
  EXPECT_THROW(gdn2::shape_numel({int64_t{1} << 40, int64_t{1} << 40}), gdn2::ValueError);
  EXPECT_EQ(gdn2::shape_numel({int64_t{1} << 40, 0}), 0);
}

TEST(Tensor, ToConvertsIntoAFreshCopy) {
  const Tensor a = Tensor::from_vector<float>({4}, {1.0f, -0.5f, 3.140625f, 65504.0f});
  const Tensor b = a.to(DType::bf16);
  EXPECT_EQ(b.dtype(), DType::bf16);
  EXPECT_EQ(b.data<gdn2::bf16_t>()[0].bits, 0x3f80);
  EXPECT_EQ(b.to(DType::f32).to_f64_vector(), (std::vector<double>{1.0, -0.5, 3.140625, 65536.0}));
  const Tensor h = a.to(DType::f16);
  EXPECT_EQ(h.to_f64_vector(), (std::vector<double>{1.0, -0.5, 3.140625, 65504.0}));
  Tensor c = a.clone();
  EXPECT_NE(c.raw(), a.raw());
  c.data<float>()[0] = 7.0f;
  EXPECT_EQ(a.item(0), 1.0);
  EXPECT_THROW(Tensor().to(DType::f32), gdn2::ValueError);
}

TEST(Tensor, ReshapeSharesMemory) {
  Tensor a = Tensor::from_vector<int32_t>({2, 6}, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11});
  const Tensor b = a.reshape({3, -1});
  EXPECT_EQ(b.shape(), (gdn2::Shape{3, 4}));
  EXPECT_EQ(b.raw(), a.raw());
  a.data<int32_t>()[5] = 50;
  EXPECT_EQ(b.item(5), 50.0);
  EXPECT_EQ(a.reshape({12}).shape(), (gdn2::Shape{12}));
  EXPECT_THROW(a.reshape({5, -1}), gdn2::ShapeError);
  EXPECT_THROW(a.reshape({-1, -1}), gdn2::ShapeError);
  EXPECT_THROW(a.reshape({13}), gdn2::ShapeError);
  EXPECT_THROW(a.reshape({-2, -6}), gdn2::ShapeError);
  EXPECT_EQ(Tensor::zeros({0, 3}, DType::f32).reshape({-1, 3}).shape(), (gdn2::Shape{0, 3}));
}

TEST(Tensor, Slice0SharesMemory) {
  Tensor a = Tensor::from_vector<float>({3, 2}, {0, 1, 2, 3, 4, 5});
  const Tensor s = a.slice0(1, 3);
  EXPECT_EQ(s.shape(), (gdn2::Shape{2, 2}));
  EXPECT_EQ(s.to_f64_vector(), (std::vector<double>{2, 3, 4, 5}));
  a.data<float>()[2] = 20;
  EXPECT_EQ(s.item(0), 20.0);
  EXPECT_EQ(a.slice0(3, 3).numel(), 0);
  EXPECT_THROW(a.slice0(2, 4), gdn2::ShapeError);
  EXPECT_THROW(a.slice0(2, 1), gdn2::ShapeError);
  EXPECT_THROW(a.slice0(-1, 1), gdn2::ShapeError);
  EXPECT_THROW(Tensor::full({}, DType::f32, 1).slice0(0, 1), gdn2::ShapeError);
}

TEST(Tensor, ReadOnlyViewRefusesMutableAccess) {
  auto buf = std::make_shared<std::vector<float>>(std::vector<float>{1, 2, 3, 4});
  const Tensor ro = Tensor::wrap({2, 2}, DType::f32, buf->data(), buf, /*read_only=*/true);
  Tensor v = ro;
  EXPECT_TRUE(v.read_only());
  EXPECT_THROW(v.raw_mut(), gdn2::ValueError);
  EXPECT_THROW(v.data<float>(), gdn2::ValueError);
  EXPECT_EQ(std::as_const(v).data<float>()[3], 4.0f);
  Tensor r = v.reshape({4});
  EXPECT_THROW(r.raw_mut(), gdn2::ValueError);
  Tensor s = v.slice0(0, 1);
  EXPECT_THROW(s.raw_mut(), gdn2::ValueError);
  Tensor c = v.clone();
  EXPECT_FALSE(c.read_only());
  c.data<float>()[0] = 9;
  EXPECT_EQ((*buf)[0], 1.0f);
  EXPECT_THROW(Tensor::wrap({1}, DType::f32, buf->data(), nullptr, true), gdn2::ValueError);
  // The view keeps its owner alive.
  std::weak_ptr<std::vector<float>> weak = buf;
  buf.reset();
  EXPECT_FALSE(weak.expired());
  EXPECT_EQ(ro.item(2), 3.0);
}

TEST(RelRmsError, Values) {
  const Tensor ref = Tensor::from_vector<float>({4}, {1, -2, 3, -4});
  EXPECT_EQ(gdn2::rel_rms_error(ref, ref), 0.0);
  const Tensor scaled = Tensor::from_vector<float>({4}, {1.5f, -3, 4.5f, -6});
  EXPECT_NEAR(gdn2::rel_rms_error(scaled, ref), 0.5, 1e-12);
  const Tensor zero = Tensor::zeros({2, 2}, DType::f64);  // different shape, same numel: compared flat
  EXPECT_NEAR(gdn2::rel_rms_error(ref, zero), std::sqrt(30.0 / 4), 1e-12);
  EXPECT_EQ(gdn2::rel_rms_error(Tensor::zeros({0}, DType::f32), Tensor::zeros({0}, DType::f32)), 0.0);
  EXPECT_THROW(gdn2::rel_rms_error(ref, Tensor::zeros({3}, DType::f32)), gdn2::ShapeError);
  EXPECT_THROW(gdn2::rel_rms_error(ref, Tensor()), gdn2::ValueError);
}

TEST(RelRmsError, NonFiniteIsInfinite) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  const Tensor ref = Tensor::from_vector<float>({3}, {1, 2, 3});
  const double big = std::numeric_limits<double>::infinity();
  EXPECT_EQ(gdn2::rel_rms_error(Tensor::from_vector<float>({3}, {1, nan, 3}), ref), big);
  EXPECT_EQ(gdn2::rel_rms_error(ref, Tensor::from_vector<float>({3}, {1, nan, 3})), big);
  EXPECT_EQ(gdn2::rel_rms_error(Tensor::from_vector<float>({3}, {1, 2, inf}), ref), big);
  EXPECT_EQ(gdn2::rel_rms_error(Tensor::from_vector<float>({3}, {-inf, -inf, -inf}),
                                Tensor::from_vector<float>({3}, {-inf, -inf, -inf})),
            big);
  const Tensor bf = Tensor::from_vector<float>({3}, {1, nan, 3}).to(DType::bf16);
  EXPECT_EQ(gdn2::rel_rms_error(bf, ref), big);
  EXPECT_FALSE(gdn2::all_finite(bf));
  EXPECT_TRUE(gdn2::all_finite(ref));
}

}  // namespace
