// Gdn2Plan: a forward planned once (outputs, kernel parameters) and launched repeatedly without allocation.
#include "cpu/gdn2.h"
#include "gdn2/ops/gdn2.h"
#include "ops/gdn2_problem.h"
#ifdef GDN2_WITH_CUDA
#include "cuda/gdn2.h"
#endif

namespace gdn2 {

struct Gdn2Plan::Impl {
  Gdn2Inputs in;
  Gdn2Options opt;
  Gdn2Kernel kernel;
  Tensor* state = nullptr;
  Device device = Device::cpu;
  Gdn2Outputs out;
#ifdef GDN2_WITH_CUDA
  std::shared_ptr<cuda::CudaPlan> cuda;
#endif
};

int64_t Gdn2Plan::workspace_bytes(const Gdn2Inputs& in, const Gdn2Options& opt, Gdn2Kernel kernel) {
  const Gdn2Problem p = gdn2_problem(in, opt, "Gdn2Plan::workspace_bytes");
  if (p.device == Device::cpu) return 0;
#ifdef GDN2_WITH_CUDA
  return cuda::workspace_bytes(p, in, kernel == Gdn2Kernel::chunk);
#else
  (void)kernel;
  GDN2_THROW(UnsupportedError, "Gdn2Plan: CUDA tensors need a build with the CUDA backend");
#endif
}

Gdn2Plan::Gdn2Plan(const Gdn2Inputs& in, const Gdn2Options& opt, Gdn2Kernel kernel, Tensor* state, Tensor* workspace)
    : impl_(std::make_unique<Impl>()) {
  const Gdn2Problem p = gdn2_problem(in, opt, "Gdn2Plan");
  GDN2_CHECK(state == nullptr || kernel == Gdn2Kernel::recurrent, ValueError,
             "Gdn2Plan: an in-place state is for the recurrent kernel");
  if (state != nullptr) gdn2_check_step_state(p, *state, "Gdn2Plan");
  GDN2_CHECK(!opt.gates_logits || kernel == Gdn2Kernel::recurrent || p.device == Device::cpu, UnsupportedError,
             "Gdn2Plan: a chunk plan on CUDA takes the gates b and w, not their logits (gates_logits)");
  impl_->in = in;
  impl_->opt = opt;
  impl_->kernel = kernel;
  impl_->state = state;
  impl_->device = p.device;
  if (p.device == Device::cuda) {
#ifdef GDN2_WITH_CUDA
    impl_->cuda = cuda::plan_make(p, in, kernel == Gdn2Kernel::chunk, state, workspace, impl_->out);
#else
    (void)workspace;
    GDN2_THROW(UnsupportedError, "Gdn2Plan: CUDA tensors need a build with the CUDA backend");
#endif
  }
}

Gdn2Plan::~Gdn2Plan() = default;

void Gdn2Plan::run(void* stream) {
  Impl& m = *impl_;
#ifdef GDN2_WITH_CUDA
  if (m.cuda) {
    cuda::plan_run(*m.cuda, stream);
    return;
  }
#endif
  if (m.state != nullptr) {
    m.out.o = gdn2_recurrent_step(m.in, *m.state, m.opt);
  } else {
    m.out = m.kernel == Gdn2Kernel::chunk ? gdn2_chunk_fwd(m.in, m.opt) : gdn2_recurrent(m.in, m.opt);
  }
}

void Gdn2Plan::sync() {
#ifdef GDN2_WITH_CUDA
  if (impl_->cuda) cuda::plan_sync(*impl_->cuda);
#endif
}

const Gdn2Outputs& Gdn2Plan::outputs() const { return impl_->out; }
Device Gdn2Plan::device() const { return impl_->device; }

}  // namespace gdn2

