// The language model on the GPU against the same model on the CPU: one training step's loss and every parameter
// gradient (BF16 mixed precision within bf16 budgets; F32 compute tightly), cached inference (prefill + decode
// against a full forward), the optimizer ops and the device tensor primitives the model uses.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>

#include "cpu/op_test_util.h"
#include "cuda/model_cuda_util.h"
#include "cuda/require_gpu.h"
#include "gdn2/model/lm.h"
#include "gdn2/ops/dense.h"
#include "gdn2/ops/optim.h"
#include "model/model_test_util.h"
#include "model/params.h"

namespace gdn2 {
namespace {

using test::copy_params;
using test::gpu_config;

struct StepResult {
  double loss = 0;
  double worst_grad = 0;  // largest relative RMS error of one parameter's gradient
  std::string worst_name;
  double all_grads = 0;   // relative RMS error of all gradients together
};

StepResult compare_train_step(DType compute, int64_t B, int64_t T) {
  const ModelConfig c = gpu_config();
  LanguageModel cpu(c, DType::f32);
  cpu.init_random(5);
  LanguageModel gpu(c, DType::f32, Device::cuda, compute);
  copy_params(cpu, gpu);
  const Tensor ids = test::random_ids(B, T, c.vocab_size, 6);
  Tensor targets = test::random_ids(B, T, c.vocab_size, 7);
  targets.data<int32_t>()[3] = -1;  // an ignored position
  cpu.params().zero_grad();
  gpu.params().zero_grad();
  const double loss_cpu = cpu.forward_loss(ids, targets, true);
  cpu.backward();
  const double loss_gpu = gpu.forward_loss(ids, targets, true);
  gpu.backward();
  StepResult r;
  r.loss = std::abs(loss_gpu - loss_cpu) / std::abs(loss_cpu);
  std::vector<double> all_cpu, all_gpu;
  for (const Param& p : cpu.params().all()) {
    const Tensor& g_gpu = gpu.params().at(p.spec.name).grad;
    EXPECT_EQ(g_gpu.device(), Device::cuda);
    EXPECT_EQ(g_gpu.dtype(), DType::f32);
    const double e = rel_rms_error(g_gpu, p.grad);
    if (e > r.worst_grad || std::isnan(e)) {
      r.worst_grad = e;
      r.worst_name = p.spec.name;
    }
    const std::vector<double> a = p.grad.to_f64_vector(), b = g_gpu.to_f64_vector();
    all_cpu.insert(all_cpu.end(), a.begin(), a.end());
    all_gpu.insert(all_gpu.end(), b.begin(), b.end());
  }
  const Shape n{static_cast<int64_t>(all_cpu.size())};
  r.all_grads = rel_rms_error(Tensor::from_vector(n, all_gpu), Tensor::from_vector(n, all_cpu));
  std::printf("[ %s compute B%ld T%ld ] loss %.6f vs %.6f (rel %.2e); gradients rel RMS %.2e overall, worst %.2e (%s)\n",
              std::string(dtype_name(compute)).c_str(), static_cast<long>(B), static_cast<long>(T), loss_gpu, loss_cpu,
              r.loss, r.all_grads, r.worst_grad, r.worst_name.c_str());
  return r;
}

TEST(ModelCuda, Bf16TrainStepMatchesCpu) {
  REQUIRE_GPU();
  // Budgets (SPEC §6): the same step with F32 compute agrees to ~3e-6 (F32TrainStepMatchesCpuTightly), so what is
  // left here is bf16 rounding: activations (and the residual stream) round at every op (2^-9 relative), and six
  // layers of backward compound it. H100 measured: loss 1.7e-4, all gradients 4.2e-2, worst parameter 6.7e-2
  // (a decay-gate projection, whose gradient passes through exp of the cumulated gate).
  const StepResult r = compare_train_step(DType::bf16, 2, 150);
  EXPECT_LE(r.loss, 2e-3);
  EXPECT_LE(r.all_grads, 6e-2);
  EXPECT_LE(r.worst_grad, 1.2e-1) << r.worst_name;
}

TEST(ModelCuda, F32TrainStepMatchesCpuTightly) {
  REQUIRE_GPU();
  const StepResult r = compare_train_step(DType::f32, 2, 150);
  EXPECT_LE(r.loss, 1e-5);
  EXPECT_LE(r.all_grads, 1e-4);
  EXPECT_LE(r.worst_grad, 1e-3) << r.worst_name;
}

// Prefill in pieces, then one token at a time, against the full forward on the GPU.
TEST(ModelCuda, CachedInferenceMatchesFullForward) {
  REQUIRE_GPU();
  const ModelConfig c = gpu_config();
  for (DType compute : {DType::f32, DType::bf16}) {
    LanguageModel m(c, DType::f32, Device::cuda, compute);
    m.init_random(9);
    const int64_t B = 2, T = 90, prefill = 70, piece = 33;
    const Tensor ids = test::random_ids(B, T, c.vocab_size, 10);
    const Tensor full = m.forward_logits(ids).to(DType::f32).cpu();
    const int64_t V = c.vocab_size;
    InferenceState st = m.new_state(B);
    // BF16: the cached path rounds at other points than the full forward (the recurrent step against the chunk
    // kernel, pieces of the prompt): measured up to 3.2e-2 on H100.
    const double budget = compute == DType::f32 ? 1e-4 : 5e-2;
    auto check = [&](const Tensor& logits, int64_t t0) {
      const Tensor l = logits.to(DType::f32).cpu();
      const int64_t n = l.size(1);
      for (int64_t b = 0; b < B; ++b) {
        const Tensor got = Tensor::from_vector<float>(
            {n, V}, std::vector<float>(l.data<float>() + b * n * V, l.data<float>() + (b + 1) * n * V));
        const Tensor want = Tensor::from_vector<float>(
            {n, V}, std::vector<float>(full.data<float>() + (b * T + t0) * V, full.data<float>() + (b * T + t0 + n) * V));
        EXPECT_LE(rel_rms_error(got, want), budget) << dtype_name(compute) << " batch " << b << " from " << t0;
      }
    };
    auto slice = [&](int64_t t0, int64_t n) {
      std::vector<int32_t> v;
      for (int64_t b = 0; b < B; ++b)
        for (int64_t t = t0; t < t0 + n; ++t) v.push_back(ids.data<int32_t>()[b * T + t]);
      return Tensor::from_vector<int32_t>({B, n}, v);
    };
    int64_t t = 0;
    for (; t < prefill; t += std::min(piece, prefill - t)) check(m.forward_logits(slice(t, std::min(piece, prefill - t)), &st), t);
    for (; t < T; ++t) check(m.forward_logits(slice(t, 1), &st), t);
    EXPECT_EQ(st.length, T);
  }
}

TEST(ModelCuda, OptimizerOpsMatchCpu) {
  REQUIRE_GPU();
  const Shape s{37, 29};
  const Tensor w = test::random_tensor(s, 1).to(DType::f32), g = test::random_tensor(s, 2).to(DType::f32);
  const Tensor m = test::random_tensor(s, 3, -0.1, 0.1).to(DType::f32), v = test::random_tensor(s, 4, 0, 0.1).to(DType::f32);
  Tensor wc = w.clone(), mc = m.clone(), vc = v.clone();
  Tensor wg = w.to(Device::cuda), mg = m.to(Device::cuda), vg = v.to(Device::cuda);
  Tensor copy = Tensor::empty(s, DType::bf16, Device::cuda);
  const AdamWHyper h{3e-3, 0.9, 0.95, 1e-8, 0.1, 7};
  adamw_update(wc, g, mc, vc, h);
  adamw_update(wg, g.to(Device::cuda), mg, vg, h, &copy);
  EXPECT_LE(rel_rms_error(wg, wc), 1e-6);
  EXPECT_LE(rel_rms_error(mg, mc), 1e-6);
  EXPECT_LE(rel_rms_error(vg, vc), 1e-6);
  EXPECT_LE(rel_rms_error(copy, wc), 4e-3);  // the bf16 copy of the updated value
  const Tensor a = test::random_tensor({1000}, 5).to(DType::f32), b = test::random_tensor({3}, 6).to(DType::f32);
  const Tensor ag = a.to(Device::cuda), bg = b.to(DType::bf16).to(Device::cuda);
  const Tensor b_rounded = b.to(DType::bf16);
  const double want = sum_squares({&a, &b_rounded}), got = sum_squares({&ag, &bg});
  EXPECT_NEAR(got, want, 1e-9 * want);
  EXPECT_EQ(sum_squares({&ag, &bg}), got);  // the same order every run
  EXPECT_THROW(sum_squares({&a, &bg}), ShapeError);
  // Many tensors across the kernel's 32768-element chunks, F32 at an unaligned offset and BF16 among them.
  const Tensor big = test::random_tensor({100003}, 7).to(DType::f32), mid = test::random_tensor({32768}, 8).to(DType::f32);
  const Tensor odd = test::random_tensor({70001}, 9).to(DType::bf16), one = test::random_tensor({1}, 10).to(DType::f32);
  const Tensor big_g = big.to(Device::cuda), mid_g = mid.to(Device::cuda), odd_g = odd.to(Device::cuda);
  const Tensor one_g = one.to(Device::cuda), shifted_g = big_g.slice0(1, 65538);
  const Tensor shifted = big.slice0(1, 65538), empty_g = Tensor::empty({0}, DType::f32, Device::cuda);
  const Tensor empty = Tensor::empty({0}, DType::f32);
  const double want_many = sum_squares({&big, &empty, &mid, &odd, &one, &shifted});
  const double got_many = sum_squares({&big_g, &empty_g, &mid_g, &odd_g, &one_g, &shifted_g});
  EXPECT_NEAR(got_many, want_many, 1e-9 * want_many);
  // The clipping factor applied inside the update.
  AdamWHyper hs = h;
  hs.grad_scale = 0.3;
  Tensor g3 = g.clone();
  scale_inplace(g3, 0.3);
  Tensor wc2 = w.clone(), mc2 = m.clone(), vc2 = v.clone();
  Tensor wg2 = w.to(Device::cuda), mg2 = m.to(Device::cuda), vg2 = v.to(Device::cuda);
  adamw_update(wc2, g3, mc2, vc2, h);
  adamw_update(wg2, g.to(Device::cuda), mg2, vg2, hs);
  EXPECT_LE(rel_rms_error(wg2, wc2), 1e-6);
  EXPECT_LE(rel_rms_error(vg2, vc2), 1e-6);
  Tensor bad = Tensor::empty({3}, DType::f32, Device::cuda);
  EXPECT_THROW(adamw_update(wg, bad, mg, vg, h), ShapeError);
  // Many parameters in one launch: sizes across the 8192-element chunks, unaligned views (element-wise path), with
  // and without decay and compute copies.
  std::vector<int64_t> sizes{8192, 1, 20001, 8191, 16389, 5};
  std::vector<Tensor> wcs, gcs, mcs, vcs, wgs, ggs, mgs, vgs, copies;
  for (size_t i = 0; i < sizes.size(); ++i) {
    const int64_t n = sizes[i], off = i == 3 ? 1 : 0;  // one view starts one element in
    const Tensor wi = test::random_tensor({n + off}, 20 + i).to(DType::f32), gi = test::random_tensor({n + off}, 40 + i).to(DType::f32);
    const Tensor mi = test::random_tensor({n + off}, 60 + i, -0.1, 0.1).to(DType::f32);
    const Tensor vi = test::random_tensor({n + off}, 80 + i, 0, 0.1).to(DType::f32);
    wcs.push_back(wi.slice0(off, off + n).clone()), gcs.push_back(gi.slice0(off, off + n).clone());
    mcs.push_back(mi.slice0(off, off + n).clone()), vcs.push_back(vi.slice0(off, off + n).clone());
    wgs.push_back(wi.to(Device::cuda).slice0(off, off + n)), ggs.push_back(gi.to(Device::cuda).slice0(off, off + n));
    mgs.push_back(mi.to(Device::cuda).slice0(off, off + n)), vgs.push_back(vi.to(Device::cuda).slice0(off, off + n));
    copies.push_back(Tensor::empty({n + 1}, DType::bf16, Device::cuda).slice0(i == 4 ? 1 : 0, (i == 4 ? 1 : 0) + n));
  }
  std::vector<AdamWSlot> cpu_slots, gpu_slots;
  for (size_t i = 0; i < sizes.size(); ++i) {
    const bool decay = i % 2 == 0;
    cpu_slots.push_back({&wcs[i], &gcs[i], &mcs[i], &vcs[i], nullptr, decay});
    gpu_slots.push_back({&wgs[i], &ggs[i], &mgs[i], &vgs[i], i == 2 ? nullptr : &copies[i], decay});
  }
  adamw_update(cpu_slots, hs);
  adamw_update(gpu_slots, hs);
  for (size_t i = 0; i < sizes.size(); ++i) {
    EXPECT_LE(rel_rms_error(wgs[i], wcs[i]), 1e-6) << i;
    EXPECT_LE(rel_rms_error(mgs[i], mcs[i]), 1e-6) << i;
    EXPECT_LE(rel_rms_error(vgs[i], vcs[i]), 1e-6) << i;
    if (i != 2) {
      EXPECT_LE(rel_rms_error(copies[i], wcs[i]), 4e-3) << i;
    }
  }
  std::vector<AdamWSlot> mixed{gpu_slots[0], {&wc, &g, &mc, &vc}};
  EXPECT_THROW(adamw_update(mixed, h), ShapeError);  // one CPU slot among CUDA ones
}

TEST(ModelCuda, DeviceConversionAndRowCopies) {
  REQUIRE_GPU();
  const Tensor x = test::random_tensor({5, 7, 3}, 11);
  for (DType from : {DType::f64, DType::f32, DType::bf16, DType::f16})
    for (DType to : {DType::f64, DType::f32, DType::bf16, DType::f16}) {
      const Tensor src = x.to(from);
      const Tensor want = src.to(to);
      const Tensor got = src.to(Device::cuda).to(to).cpu();
      ASSERT_EQ(got.dtype(), to);
      EXPECT_EQ(got.to_f64_vector(), want.to_f64_vector()) << dtype_name(from) << " -> " << dtype_name(to);
    }
  // Join [5, 7, 3] and [5, 2, 3] along dim 1 on the device, and cut the last 4 steps back out.
  const Tensor y = test::random_tensor({5, 2, 3}, 12).to(DType::f32), xf = x.to(DType::f32);
  const size_t e = 4, n1 = 7 * 3 * e, n2 = 2 * 3 * e;
  Tensor joined = Tensor::empty({5, 9, 3}, DType::f32, Device::cuda);
  copy_rows(joined, 0, n1 + n2, xf.to(Device::cuda), 0, n1, n1, 5);
  copy_rows(joined, n1, n1 + n2, y.to(Device::cuda), 0, n2, n2, 5);
  const Tensor j = joined.cpu();
  for (int64_t b = 0; b < 5; ++b)
    for (int64_t t = 0; t < 9; ++t)
      for (int64_t c = 0; c < 3; ++c)
        EXPECT_EQ(j.data<float>()[(b * 9 + t) * 3 + c],
                  t < 7 ? xf.data<float>()[(b * 7 + t) * 3 + c] : y.data<float>()[(b * 2 + t - 7) * 3 + c]);
  Tensor small = Tensor::empty({5, 1, 3}, DType::f32, Device::cuda);
  EXPECT_THROW(copy_rows(small, 0, n2, joined, 0, n1 + n2, n2, 5), ShapeError);
  // One element of a device tensor (that element alone crosses to the host), in every float dtype.
  for (DType dt : {DType::f64, DType::f32, DType::bf16, DType::f16}) {
    const Tensor h = x.to(dt), d = h.to(Device::cuda);
    for (int64_t i : {int64_t{0}, int64_t{17}, h.numel() - 1}) EXPECT_EQ(d.item(i), h.item(i)) << dtype_name(dt) << " " << i;
    EXPECT_THROW(d.item(h.numel()), ShapeError);
  }
}

}  // namespace
}  // namespace gdn2
