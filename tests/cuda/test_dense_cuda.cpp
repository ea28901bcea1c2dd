// The CUDA dense ops against the CPU ops on the same values (inputs rounded to the GPU dtype first, the CPU in F32):
// the linear layer (cuBLASLt) on odd shapes with and without bias, its accumulated parameter gradients (F32 master
// gradients of low-precision layers, and x's dtype); the elementwise ops on F32, BF16 and F16 (vector and scalar
// paths, unaligned views, F32 += BF16/F16); split/concat of any dtype; the embedding with repeated ids on either
// device (bitwise determinism of its gradient, out-of-range ids refused); and bad calls refused with typed errors.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <vector>

#include "cpu/op_test_util.h"
#include "cuda/require_gpu.h"
#include "gdn2/backend.h"
#include "gdn2/ops/dense.h"

namespace gdn2 {
namespace {

using test::random_tensor;

struct LinearCase {
  const char* name;
  Shape x_shape;
  int64_t out;
  bool bias;
};

// Budgets (SPEC §6): the products accumulate in fp32 either way; low-precision outputs round once to their type.
double budget_for(DType dt) { return dt == DType::f32 ? 1e-5 : dt == DType::bf16 ? 8e-3 : 2e-3; }

TEST(DenseCuda, LinearMatchesCpu) {
  REQUIRE_GPU();
  const LinearCase cases[] = {
      {"odd", {3, 7, 33}, 45, true},
      {"wide", {1, 64, 128}, 256, false},
      {"one_in", {5, 1}, 9, true},
      {"one_row", {1, 1, 96}, 17, true},
      {"model", {2, 300, 512}, 1024, true},
  };
  uint64_t seed = 100;
  for (const LinearCase& c : cases) {
    for (DType dt : {DType::f32, DType::bf16, DType::f16}) {
      const int64_t in = c.x_shape.back();
      // The values each dtype holds, in F32 for the CPU reference.
      const Tensor x = random_tensor(c.x_shape, ++seed).to(dt).to(DType::f32);
      const Tensor w = random_tensor({c.out, in}, ++seed, -0.5, 0.5).to(dt).to(DType::f32);
      const Tensor b = c.bias ? random_tensor({c.out}, ++seed).to(dt).to(DType::f32) : Tensor();
      Shape ys = c.x_shape;
      ys.back() = c.out;
      const Tensor dy = random_tensor(ys, ++seed).to(dt).to(DType::f32);
      auto gpu = [&](const Tensor& t) { return t.defined() ? t.to(dt).to(Device::cuda) : Tensor(); };

      const Tensor y = linear_forward(gpu(x), gpu(w), gpu(b));
      const Tensor y_ref = linear_forward(x, w, b);
      ASSERT_EQ(y.dtype(), dt);
      ASSERT_EQ(y.shape(), y_ref.shape());
      const double ey = rel_rms_error(y.to(Device::cpu).to(DType::f32), y_ref);

      // Gradients accumulate into what they hold: start them from random values.
      const Tensor dw0 = random_tensor({c.out, in}, ++seed).to(DType::f32);
      const Tensor db0 = random_tensor({c.out}, ++seed).to(DType::f32);
      Tensor dw_ref = dw0.clone(), db_ref = db0.clone();
      const Tensor dx_ref = linear_backward(dy, x, w, &dw_ref, c.bias ? &db_ref : nullptr);
      Tensor dw = dw0.to(Device::cuda), db = db0.to(Device::cuda);  // F32 master gradients
      const Tensor dx = linear_backward(gpu(dy), gpu(x), gpu(w), &dw, c.bias ? &db : nullptr);
      ASSERT_EQ(dx.dtype(), dt);
      const double edx = rel_rms_error(dx.to(Device::cpu).to(DType::f32), dx_ref);
      const double edw = rel_rms_error(dw.to(Device::cpu), dw_ref);
      const double edb = c.bias ? rel_rms_error(db.to(Device::cpu), db_ref) : 0.0;
      std::printf("[ errors   ] linear %s %s: y %.2e dx %.2e dw %.2e db %.2e\n", c.name,
                  std::string(dtype_name(dt)).c_str(), ey, edx, edw, edb);
      EXPECT_LE(ey, budget_for(dt)) << c.name;
      EXPECT_LE(edx, budget_for(dt)) << c.name;
      EXPECT_LE(edw, 1e-5) << c.name << ": fp32 accumulation of the same products";
      EXPECT_LE(edb, 1e-5) << c.name;

      // dx added into a tensor that holds values already (the fused accumulation of a layer's input gradient).
      const Tensor dx0 = random_tensor(c.x_shape, ++seed).to(dt).to(DType::f32);
      Tensor dx_into_ref = dx0.clone(), dx_into = gpu(dx0);
      linear_backward(dy, x, w, nullptr, nullptr, &dx_into_ref);
      const Tensor back = linear_backward(gpu(dy), gpu(x), gpu(w), nullptr, nullptr, &dx_into);
      EXPECT_EQ(back.raw(), dx_into.raw());
      EXPECT_LE(rel_rms_error(dx_into.to(Device::cpu).to(DType::f32), dx_into_ref), budget_for(dt)) << c.name;

      if (dt != DType::f32) {  // parameter gradients in x's dtype: the accumulated sum rounded once
        Tensor dw_low = gpu(dw0);
        linear_backward(gpu(dy), gpu(x), gpu(w), &dw_low, nullptr);
        EXPECT_LE(rel_rms_error(dw_low.to(Device::cpu).to(DType::f32), dw_ref), 2 * budget_for(dt)) << c.name;
      }
    }
  }
}

TEST(DenseCuda, PackedSwigluAndLinearIntoMatchCpu) {
  REQUIRE_GPU();
  for (DType dt : {DType::f32, DType::bf16}) {
    const Tensor gu = random_tensor({3, 5, 2 * 37}, 21).to(dt).to(DType::f32);
    const Tensor y = swiglu_forward(gu.to(dt).to(Device::cuda));
    EXPECT_LE(rel_rms_error(y.to(Device::cpu).to(DType::f32), swiglu_forward(gu)), budget_for(dt));
    const Tensor x = random_tensor({7, 33}, 22).to(dt).to(DType::f32), w = random_tensor({19, 33}, 23).to(dt).to(DType::f32);
    const Tensor acc = random_tensor({7, 19}, 24).to(dt).to(DType::f32);
    Tensor into_ref = acc.clone(), into = acc.to(dt).to(Device::cuda);
    linear_forward(x, w, Tensor(), &into_ref);
    const Tensor back = linear_forward(x.to(dt).to(Device::cuda), w.to(dt).to(Device::cuda), Tensor(), &into);
    EXPECT_EQ(back.raw(), into.raw());
    EXPECT_LE(rel_rms_error(into.to(Device::cpu).to(DType::f32), into_ref), budget_for(dt));
    // A residual in the product: a new tensor, the residual as it was.
    const Tensor res = acc.to(dt).to(Device::cuda), res_before = res.cpu();
    const Tensor with_res = linear_forward(x.to(dt).to(Device::cuda), w.to(dt).to(Device::cuda), Tensor(), nullptr, res);
    EXPECT_NE(with_res.raw(), res.raw());
    EXPECT_LE(rel_rms_error(with_res.to(Device::cpu).to(DType::f32), into_ref), budget_for(dt));
    EXPECT_EQ(res.cpu().to_f64_vector(), res_before.to_f64_vector());
  }
}

TEST(DenseCuda, LinearRefusesBadCalls) {
  REQUIRE_GPU();
  auto f32 = [](const Shape& s, uint64_t seed) { return random_tensor(s, seed).to(DType::f32); };
  const Tensor x = f32({4, 8}, 1).to(Device::cuda), w = f32({6, 8}, 2).to(Device::cuda);
  const Tensor dy = f32({4, 6}, 3).to(Device::cuda);
  EXPECT_THROW(linear_forward(x, w.to(Device::cpu)), ShapeError);                       // mixed devices
  EXPECT_THROW(linear_forward(x.to(DType::bf16), w), DTypeError);                      // weight not in x's dtype
  EXPECT_THROW(linear_forward(x.to(DType::f64), w.to(DType::f64)), DTypeError);        // F64 on the GPU
  EXPECT_THROW(linear_forward(x, f32({6, 7}, 4).to(Device::cuda)), ShapeError);  // in mismatch
  Tensor dw_bad = random_tensor({6, 8}, 5).to(Device::cuda);  // F64
  EXPECT_THROW(linear_backward(dy, x, w, &dw_bad, nullptr), DTypeError);
  Tensor dw_cpu = f32({6, 8}, 6);
  EXPECT_THROW(linear_backward(dy, x, w, &dw_cpu, nullptr), ShapeError);
  Tensor dx_wrong = f32({4, 7}, 7).to(Device::cuda);
  EXPECT_THROW(linear_backward(dy, x, w, nullptr, nullptr, &dx_wrong), ShapeError);
}

const DType kFloatTypes[] = {DType::f32, DType::bf16, DType::f16};

// Values representable in dt, as F32 on the CPU (the reference's input).
Tensor held(const Shape& s, uint64_t seed, DType dt, double lo = -1, double hi = 1) {
  return random_tensor(s, seed, lo, hi).to(dt).to(DType::f32);
}

// One operand: the reference's F32 values on the CPU and the same values in the GPU dtype; with `view`, both are rows
// 1.. of a tensor one row larger (an unaligned start for 16-byte accesses unless a row is a multiple of 16 bytes).
struct Operand {
  Tensor ref, gpu;
};
Tensor rows_from_1(const Tensor& t, bool view) { return view ? t.slice0(1, t.size(0)) : t; }
Operand operand(const Shape& shape, uint64_t seed, DType dt, bool view, double lo, double hi) {
  Shape big = shape;
  if (view) big[0] += 1;
  const Tensor h = held(big, seed, dt, lo, hi);
  return {rows_from_1(h, view), rows_from_1(h.to(dt).to(Device::cuda), view)};
}

TEST(DenseCuda, ElementwiseMatchesCpu) {
  REQUIRE_GPU();
  // Only a tail; packs of eight and a tail; several grid-stride sweeps (more than 2112 blocks x 256 threads x 8).
  const Shape shapes[] = {{1}, {3, 7}, {37, 130}, {1000, 7}, {4500, 1000}};
  uint64_t seed = 300;
  for (const Shape& shape : shapes)
    for (DType dt : kFloatTypes)
      for (bool view : {false, true}) {
        if (view && (shape.size() < 2 || shape[0] > 1000)) continue;
        const std::string what = shape_str(shape) + " " + std::string(dtype_name(dt)) + (view ? " view" : "");
        const Operand a = operand(shape, ++seed, dt, view, -4, 4), b = operand(shape, ++seed, dt, view, -1, 1);
        const Operand c = operand(shape, ++seed, dt, view, -2, 2);
        auto expect = [&](const Tensor& got, const Tensor& want, const char* op) {
          ASSERT_EQ(got.dtype(), dt) << op << " " << what;
          ASSERT_EQ(got.shape(), want.shape()) << op << " " << what;
          EXPECT_LE(rel_rms_error(got, want), budget_for(dt)) << op << " " << what;
        };
        expect(sigmoid_forward(a.gpu), sigmoid_forward(a.ref), "sigmoid");
        expect(silu_forward(a.gpu), silu_forward(a.ref), "silu");
        expect(sigmoid_backward(b.gpu, a.gpu), sigmoid_backward(b.ref, a.ref), "sigmoid_backward");
        expect(silu_backward(b.gpu, a.gpu), silu_backward(b.ref, a.ref), "silu_backward");
        expect(swiglu_forward(a.gpu, b.gpu), swiglu_forward(a.ref, b.ref), "swiglu");
        expect(mul_forward(a.gpu, b.gpu), mul_forward(a.ref, b.ref), "mul");
        Tensor dg, du, dg_ref, du_ref;
        swiglu_backward(c.gpu, a.gpu, b.gpu, dg, du);
        swiglu_backward(c.ref, a.ref, b.ref, dg_ref, du_ref);
        expect(dg, dg_ref, "swiglu dgate");
        expect(du, du_ref, "swiglu dup");

        // In place, on the same kind of view (fresh memory): x += y in one dtype, x *= s, and an F32 master
        // gradient += a dt one.
        Operand x = operand(shape, ++seed, dt, view, -1, 1);
        add_inplace(x.gpu, b.gpu);
        add_inplace(x.ref, b.ref);
        expect(x.gpu, x.ref, "add");
        scale_inplace(x.gpu, -0.75);
        scale_inplace(x.ref, -0.75);
        expect(x.gpu, x.ref, "add, scale");
        Operand acc = operand(shape, ++seed, DType::f32, view, -1, 1);
        add_inplace(acc.gpu, b.gpu);
        add_inplace(acc.ref, b.ref);
        ASSERT_EQ(acc.gpu.dtype(), DType::f32);
        EXPECT_LE(rel_rms_error(acc.gpu, acc.ref), 1e-7) << "F32 += " << what;
      }
}

TEST(DenseCuda, ElementwiseRefusesBadCalls) {
  REQUIRE_GPU();
  const Tensor f32 = Tensor::zeros({3, 8}, DType::f32, Device::cuda), bf16 = Tensor::zeros({3, 8}, DType::bf16, Device::cuda);
  const Tensor f16 = Tensor::zeros({3, 8}, DType::f16, Device::cuda), f64 = Tensor::zeros({3, 8}, DType::f64, Device::cuda);
  EXPECT_THROW(mul_forward(f32, bf16), DTypeError);                        // a dtype mix
  EXPECT_THROW(mul_forward(f32, Tensor::zeros({3, 8}, DType::f32)), ShapeError);  // another device
  EXPECT_THROW(mul_forward(f32, Tensor::zeros({3, 7}, DType::f32, Device::cuda)), ShapeError);
  EXPECT_THROW(sigmoid_forward(f64), DTypeError);                          // F64 on the GPU
  EXPECT_THROW(silu_backward(bf16, f16), DTypeError);
  Tensor dg, du;
  EXPECT_THROW(swiglu_backward(bf16, bf16, f32, dg, du), DTypeError);
  EXPECT_THROW(swiglu_backward(bf16, bf16, Tensor::zeros({3, 7}, DType::bf16, Device::cuda), dg, du), ShapeError);
  Tensor x = bf16.clone(), y = f32.clone();
  EXPECT_THROW(add_inplace(x, f32), DTypeError);   // a low-precision x takes only its own dtype
  EXPECT_THROW(add_inplace(x, f16), DTypeError);
  EXPECT_THROW(add_inplace(y, f64), DTypeError);
  EXPECT_THROW(add_inplace(y, Tensor::zeros({3, 8}, DType::f32)), ShapeError);
  EXPECT_THROW(add_inplace(y, Tensor::zeros({3, 7}, DType::f32, Device::cuda)), ShapeError);
  Tensor z = f64.clone();
  EXPECT_THROW(scale_inplace(z, 2.0), DTypeError);
  EXPECT_THROW(concat_last({f32, bf16}), DTypeError);
  EXPECT_THROW(concat_last({f32, Tensor::zeros({3, 8}, DType::f32)}), ShapeError);
  EXPECT_THROW(concat_last({f32, Tensor::zeros({2, 8}, DType::f32, Device::cuda)}), ShapeError);
  EXPECT_THROW(split_last(f32, {3, 4}), ShapeError);
}

TEST(DenseCuda, SplitConcatAnyDtype) {
  REQUIRE_GPU();
  struct Case {
    Shape shape;
    std::vector<int64_t> sizes;
  };
  const Case cases[] = {
      {{5, 7}, {2, 0, 5}},                          // 2- and 4-byte pieces, an empty part
      {{3, 37, 128}, {64, 56, 8}},                  // 16-byte pieces
      {{1, 1}, {1}},                                // one element
      {{37, 20}, std::vector<int64_t>(20, 1)},      // more parts than one launch takes
      {{1000, 48}, {16, 8, 24}},                    // many rows
      {{4, 0}, {0, 0}},                             // nothing to copy
      {{2, 3, 130}, {1, 128, 1}},                   // unaligned parts around an aligned middle
  };
  uint64_t seed = 400;
  for (const Case& c : cases)
    for (DType dt : {DType::f32, DType::bf16, DType::f16, DType::i32}) {
      const Tensor x = random_tensor(c.shape, ++seed, -1000, 1000).to(dt);
      const std::string what = shape_str(c.shape) + " " + std::string(dtype_name(dt));
      const std::vector<Tensor> parts = split_last(x.to(Device::cuda), c.sizes);
      const std::vector<Tensor> ref = split_last(x, c.sizes);
      ASSERT_EQ(parts.size(), ref.size()) << what;
      for (size_t i = 0; i < parts.size(); ++i) {
        EXPECT_EQ(parts[i].shape(), ref[i].shape()) << what << " part " << i;
        EXPECT_EQ(parts[i].dtype(), dt) << what;
        EXPECT_FALSE(parts[i].is_cpu()) << what;
        EXPECT_EQ(parts[i].to_f64_vector(), ref[i].to_f64_vector()) << what << " part " << i;
      }
      const Tensor back = concat_last(parts);
      EXPECT_EQ(back.shape(), x.shape()) << what;
      EXPECT_EQ(back.to_f64_vector(), x.to_f64_vector()) << what;
      if (parts.size() >= 2) {  // reordered parts against the CPU's concatenation
        const Tensor swapped = concat_last({parts.back(), parts.front()});
        EXPECT_EQ(swapped.to_f64_vector(), concat_last({ref.back(), ref.front()}).to_f64_vector()) << what;
      }
    }
}

// ids with repeats covering 0 and V - 1.
std::vector<int32_t> repeated_ids(int64_t n, int64_t V) {
  std::vector<int32_t> v;
  for (int64_t i = 0; i < n; ++i) v.push_back(static_cast<int32_t>((i * i * 31 + 7) % V));
  v.front() = static_cast<int32_t>(V - 1);
  v.back() = 0;
  return v;
}

TEST(DenseCuda, EmbeddingMatchesCpu) {
  REQUIRE_GPU();
  struct Case {
    Shape ids;
    int64_t V, D;
  };
  const Case cases[] = {{{1}, 1, 1}, {{37}, 33, 7}, {{1000}, 5000, 130}, {{3, 37}, 33, 128}, {{2, 500}, 5000, 64}};
  uint64_t seed = 500;
  for (const Case& c : cases)
    for (DType dt : kFloatTypes) {
      const int64_t n = shape_numel(c.ids);
      const std::string what = "ids " + shape_str(c.ids) + " V " + std::to_string(c.V) + " D " + std::to_string(c.D) +
                               " " + std::string(dtype_name(dt));
      const Tensor ids = Tensor::from_vector<int32_t>(c.ids, repeated_ids(n, c.V));
      const Tensor table = held({c.V, c.D}, ++seed, dt);
      const Tensor table_gpu = table.to(dt).to(Device::cuda);
      const Tensor want = embedding_forward(ids, table);
      for (const Tensor& id : {ids, ids.to(Device::cuda), ids.to(DType::i64), ids.to(DType::i64).to(Device::cuda)}) {
        const Tensor y = embedding_forward(id, table_gpu);
        ASSERT_EQ(y.dtype(), dt) << what;
        ASSERT_EQ(y.shape(), want.shape()) << what;
        EXPECT_EQ(y.to_f64_vector(), want.to_f64_vector()) << what << " ids " << id.describe();
      }

      // dtable (F32) += dy rows; accumulating into random values; the same bits from host or device ids, every time.
      Shape ys = c.ids;
      ys.push_back(c.D);
      const Tensor dy = held(ys, ++seed, dt);
      const Tensor grad0 = held({c.V, c.D}, ++seed, DType::f32);
      Tensor grad_ref = grad0.clone();
      embedding_backward(dy, ids, grad_ref);
      Tensor got = grad0.to(Device::cuda);
      embedding_backward(dy.to(dt).to(Device::cuda), ids, got);
      EXPECT_LE(rel_rms_error(got, grad_ref), 1e-6) << what;
      for (const Tensor& id : {ids.to(Device::cuda), ids.to(DType::i64)}) {
        Tensor again = grad0.to(Device::cuda);
        embedding_backward(dy.to(dt).to(Device::cuda), id, again);
        EXPECT_EQ(again.to_f64_vector(), got.to_f64_vector()) << what << " ids " << id.describe();
      }
    }
}

TEST(DenseCuda, EmbeddingRefusesBadCalls) {
  REQUIRE_GPU();
  const int64_t V = 10, D = 4;
  const Tensor table = Tensor::zeros({V, D}, DType::bf16, Device::cuda);
  for (const std::vector<int32_t>& bad : {std::vector<int32_t>{1, 2, 10, 3}, std::vector<int32_t>{-1, 0, 0, 0}})
    for (DType it : {DType::i32, DType::i64}) {
      const Tensor ids = Tensor::from_vector<int32_t>({4}, bad).to(it);
      EXPECT_THROW(embedding_forward(ids, table), ValueError) << "host ids";
      EXPECT_THROW(embedding_forward(ids.to(Device::cuda), table), ValueError) << "device ids (flagged by the kernel)";
      const Tensor dy = Tensor::zeros({4, D}, DType::bf16, Device::cuda);
      Tensor dtable = Tensor::zeros({V, D}, DType::f32, Device::cuda);
      EXPECT_THROW(embedding_backward(dy, ids, dtable), ValueError);
      EXPECT_THROW(embedding_backward(dy, ids.to(Device::cuda), dtable), ValueError);
      EXPECT_EQ(dtable.to_f64_vector(), std::vector<double>(V * D, 0.0)) << "refused before any write";
    }
  // A valid call after a refused one (the flag is per call).
  const Tensor ok = Tensor::from_vector<int32_t>({2}, {9, 0}).to(Device::cuda);
  EXPECT_EQ(embedding_forward(ok, table).shape(), (Shape{2, D}));
  const Tensor ids = Tensor::from_vector<int32_t>({2}, {1, 2});
  EXPECT_THROW(embedding_forward(ids.to(DType::f32), table), DTypeError);
  EXPECT_THROW(embedding_forward(ids.to(Device::cuda), Tensor::zeros({V, D}, DType::f32)), ShapeError);
  EXPECT_THROW(embedding_forward(ids, Tensor::zeros({V, D}, DType::f64, Device::cuda)), DTypeError);
  EXPECT_THROW(embedding_forward(ids, Tensor::zeros({V * D}, DType::f32, Device::cuda)), ShapeError);
  const Tensor dy = Tensor::zeros({2, D}, DType::bf16, Device::cuda);
  Tensor dtable_low = Tensor::zeros({V, D}, DType::bf16, Device::cuda), dtable_cpu = Tensor::zeros({V, D}, DType::f32);
  Tensor dtable = Tensor::zeros({V, D}, DType::f32, Device::cuda);
  EXPECT_THROW(embedding_backward(dy, ids, dtable_low), DTypeError);  // the gradient of the table is F32
  EXPECT_THROW(embedding_backward(dy, ids, dtable_cpu), ShapeError);
  EXPECT_THROW(embedding_backward(Tensor::zeros({3, D}, DType::bf16, Device::cuda), ids, dtable), ShapeError);
  EXPECT_THROW(embedding_backward(dy.to(DType::f64), ids, dtable), DTypeError);
}

}  // namespace
}  // namespace gdn2
