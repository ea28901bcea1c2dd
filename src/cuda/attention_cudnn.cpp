// cuDNN's fused attention for the CUDA attention ops (attention_cudnn.h): one cudnn-frontend graph per problem shape
// and direction, built at its first call and kept (a shape cuDNN has no plan for is remembered as such). Tensors keep
// gdn2's [B, T, H, D] layout through strides; cuDNN's Stats are the forward's log-sum-exp.
#include "cuda/attention_cudnn.h"

#ifdef GDN2_WITH_CUDNN
#include <cudnn_frontend.h>

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>
#include <unordered_map>

#include "core/env_switch.h"
#include "gdn2/error.h"
#include "cuda/stream.h"
#include "gdn2/tensor.h"
#endif

namespace gdn2::cuda {

#ifdef GDN2_WITH_CUDNN

namespace {

namespace fe = cudnn_frontend;

std::atomic<bool>& switched_on() {
  static std::atomic<bool> on = env_switch_on("GDN2_CUDNN_ATTENTION");
  return on;
}

bool enabled() { return switched_on().load(); }

bool takes(const AttnParams& a) {
  return enabled() && (a.t == ElemType::bf16 || a.t == ElemType::f16) && a.Tq == a.Tk && a.Tq > 0 && a.W == 0 &&
         a.D % 8 == 0 && a.D <= 128 && a.B > 0;
}

cudnnHandle_t handle() {
  static cudnnHandle_t h = [] {
    cudnnHandle_t x = nullptr;
    const cudnnStatus_t st = cudnnCreate(&x);
    GDN2_CHECK(st == CUDNN_STATUS_SUCCESS, DeviceError, "cudnnCreate: ", cudnnGetErrorString(st));
    return x;
  }();
  return h;
}

enum Uid : int64_t { kQ = 1, kK, kV, kO, kStats, kDO, kDQ, kDK, kDV };

using TensorPtr = std::shared_ptr<fe::graph::Tensor_attributes>;

// Names a graph tensor and makes it a [B, H, T, D] view of gdn2's [B, T, H, D] memory.
const TensorPtr& bthd(const TensorPtr& t, const char* name, int64_t uid, int64_t B, int64_t T, int64_t H, int64_t D) {
  t->set_name(name).set_uid(uid).set_dim({B, H, T, D}).set_stride({T * H * D, D, H * D, 1});
  return t;
}

struct Plan {
  std::shared_ptr<fe::graph::Graph> graph;  // null: cuDNN has no plan for this shape
  int64_t workspace = 0;
};

using Key = std::tuple<bool, int, int64_t, int64_t, int64_t, int64_t, int64_t, float>;

// The graph of one direction for a's shape, built at first use.
const Plan& plan(const AttnParams& a, bool backward) {
  static std::mutex mu;
  static std::map<Key, Plan> plans;
  const Key key{backward, static_cast<int>(a.t), a.B, a.Tq, a.Hq, a.Hkv, a.D, a.scale};
  std::lock_guard<std::mutex> lock(mu);
  auto it = plans.find(key);
  if (it != plans.end()) return it->second;
  auto g = std::make_shared<fe::graph::Graph>();
  g->set_io_data_type(a.t == ElemType::bf16 ? fe::DataType_t::BFLOAT16 : fe::DataType_t::HALF)
      .set_intermediate_data_type(fe::DataType_t::FLOAT)
      .set_compute_data_type(fe::DataType_t::FLOAT);
  const int64_t B = a.B, T = a.Tq, Hq = a.Hq, Hkv = a.Hkv, D = a.D;
  auto input = [&] { return g->tensor(fe::graph::Tensor_attributes()); };
  auto q = bthd(input(), "q", kQ, B, T, Hq, D);
  auto k = bthd(input(), "k", kK, B, T, Hkv, D);
  auto v = bthd(input(), "v", kV, B, T, Hkv, D);
  // The log-sum-exp, F32 [B, Hq, T]: the forward's output, the backward's input.
  auto as_stats = [&](const TensorPtr& t) {
    t->set_name("stats").set_uid(kStats).set_dim({B, Hq, T, 1}).set_stride({Hq * T, T, 1, 1});
    t->set_data_type(fe::DataType_t::FLOAT);
    return t;
  };
  if (!backward) {
    auto opts = fe::graph::SDPA_attributes()
                    .set_name("sdpa")
                    .set_generate_stats(true)
                    .set_causal_mask(true)
                    .set_attn_scale(a.scale);
    auto [o, stats] = g->sdpa(q, k, v, opts);
    bthd(o, "o", kO, B, T, Hq, D)->set_output(true);
    as_stats(stats)->set_output(true);
  } else {
    auto o = bthd(input(), "o", kO, B, T, Hq, D);
    auto d_o = bthd(input(), "d_o", kDO, B, T, Hq, D);
    auto stats = as_stats(input());
    auto opts = fe::graph::SDPA_backward_attributes()
                    .set_name("sdpa_backward")
                    .set_causal_mask(true)
                    .set_attn_scale(a.scale)
                    .set_deterministic_algorithm(true);  // bitwise reproducible, as gdn2's own backward
    auto [dq, dk, dv] = g->sdpa_backward(q, k, v, o, d_o, stats, opts);
    bthd(dq, "dq", kDQ, B, T, Hq, D)->set_output(true);
    bthd(dk, "dk", kDK, B, T, Hkv, D)->set_output(true);
    bthd(dv, "dv", kDV, B, T, Hkv, D)->set_output(true);
  }
  Plan p;
  const cudnnHandle_t h = handle();
  if (g->validate().is_good() && g->build_operation_graph(h).is_good() &&
      g->create_execution_plans({fe::HeurMode_t::A}).is_good() && g->check_support(h).is_good() &&
      g->build_plans(h).is_good()) {
    int64_t ws = 0;
    if (g->get_workspace_size(ws).is_good()) {
      p.graph = g;
      p.workspace = ws;
    }
  }
  return plans.emplace(key, std::move(p)).first->second;
}

bool run(const Plan& p, std::unordered_map<int64_t, void*>& pack) {
  if (!p.graph) return false;
  const cudnnHandle_t h = handle();
  const cudnnStatus_t st = cudnnSetStream(h, stream());
  GDN2_CHECK(st == CUDNN_STATUS_SUCCESS, DeviceError, "cudnnSetStream: ", cudnnGetErrorString(st));
  Tensor workspace;
  if (p.workspace > 0) workspace = Tensor::empty({p.workspace}, DType::u8, Device::cuda);
  auto e = p.graph->execute(h, pack, p.workspace > 0 ? workspace.raw_mut() : nullptr);
  GDN2_CHECK(e.is_good(), DeviceError, "cuDNN fused attention: ", e.get_message());
  return true;
}

}  // namespace

bool cudnn_attention_built() { return true; }
bool cudnn_attention_on() { return enabled(); }
void cudnn_attention_set(bool on) { switched_on().store(on); }

bool cudnn_attention_forward(const AttnParams& a, void* o, float* lse) {
  if (!takes(a)) return false;
  std::unordered_map<int64_t, void*> pack{{kQ, const_cast<void*>(a.q)}, {kK, const_cast<void*>(a.k)},
                                          {kV, const_cast<void*>(a.v)}, {kO, o},
                                          {kStats, lse}};
  return run(plan(a, false), pack);
}

bool cudnn_attention_backward(const AttnParams& a, void* dq, void* dk, void* dv) {
  if (!takes(a)) return false;
  std::unordered_map<int64_t, void*> pack{{kQ, const_cast<void*>(a.q)},      {kK, const_cast<void*>(a.k)},
                                          {kV, const_cast<void*>(a.v)},      {kO, const_cast<void*>(a.o)},
                                          {kDO, const_cast<void*>(a.d_o)},   {kStats, const_cast<float*>(a.lse)},
                                          {kDQ, dq},                         {kDK, dk},
                                          {kDV, dv}};
  return run(plan(a, true), pack);
}

#else

bool cudnn_attention_built() { return false; }
bool cudnn_attention_on() { return false; }
void cudnn_attention_set(bool) {}
bool cudnn_attention_forward(const AttnParams&, void*, float*) { return false; }
bool cudnn_attention_backward(const AttnParams&, void*, void*, void*) { return false; }

#endif

}  // namespace gdn2::cuda
