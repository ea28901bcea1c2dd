// Host side of the CUDA GDN-2 ops: Tensor arguments -> kernel parameter blocks -> launches.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <queue>
#include <vector>

#include "cuda/common.cuh"
#include "cuda/stream.h"
#include "cuda/elem.h"
#include "cuda/gdn2.h"
#include "cuda/gdn2/kernels.h"
#include "cuda/upload.h"

namespace gdn2::cuda {

namespace {

constexpr const char* kOp = "CUDA GDN-2";  // the element-type errors' prefix

InputView view(const Tensor& t, const GateSpec& spec, int64_t dim, const char* name) {
  InputView v;
  if (spec.form == GateForm::absent) {
    v.form = Gate::absent;
    return v;
  }
  v.ptr = t.raw();
  v.type = elem_type(t, kOp, name);
  v.heads = static_cast<int32_t>(spec.heads);
  v.form = spec.form == GateForm::channel ? Gate::channel : Gate::head;
  const int64_t per_head = spec.form == GateForm::channel ? dim : 1;
  v.stride_head = per_head;
  v.stride_token = spec.heads * per_head;
  return v;
}

// Device workspace of one launch: the sequence offsets (varlen); for the chunk path's per-chunk states the chunk
// tables; on the tensor-core chunk path also the segment tables, the per-(chunk, value head) tiles of ChunkWork
// (params.h) and, with context parallelism, the segments' transitions and entry states. Byte offsets, 256-aligned.
struct WorkLayout {
  int64_t chunks = 0, kmax = 0, vpad = 0, segs = 0, seg_chunks = 0;  // seg_chunks: the longest segment
  int64_t offsets = -1, tables = -1, W = 0, qg = 0, kgT = 0, U = 0, P = 0, gamma = 0, A = -1, seg_state = -1,
          seg_h0 = -1;
  int64_t total = 0;
};

// The tensor-core chunk path takes bf16/fp16 q, k, v (its products round to bf16 like theirs) and K <= 128.
bool chunk_uses_tensor_cores(const Gdn2Problem& p, const Gdn2Inputs& in) {
  auto low = [](const Tensor& t) { return t.dtype() == DType::bf16 || t.dtype() == DType::f16; };
  return low(in.q) && low(in.k) && low(in.v) && p.K <= 128;
}

constexpr int64_t kChunk = 64;

int64_t chunks_of(int64_t len) { return (len + kChunk - 1) / kChunk; }

// Host chunk tables of chunk_tokens-token chunks, numbered sequence by sequence (params.h): each chunk's first token
// and length, each sequence's first chunk ([N + 1]); with seg_chunks > 0 also the segments of at most seg_chunks
// chunks of a sequential state pass: each segment's first chunk ([segs + 1]) and sequence, each sequence's first
// segment ([N + 1]). An empty sequence is one empty segment (it still has a state to pass on).
struct ChunkTables {
  std::vector<int64_t> tok0, len, first, seg_chunk0, seg_seq, seq_seg0;
  int64_t chunks() const { return static_cast<int64_t>(tok0.size()); }
  int64_t segs() const { return static_cast<int64_t>(seg_seq.size()); }
  // tok0 | len | first | seg_chunk0 | seg_seq | seq_seg0: the layout the parameter blocks' table pointers read.
  std::vector<int64_t> packed() const {
    std::vector<int64_t> t = tok0;
    for (const auto* part : {&len, &first, &seg_chunk0, &seg_seq, &seq_seg0})
      t.insert(t.end(), part->begin(), part->end());
    return t;
  }
};

ChunkTables chunk_tables(const Gdn2Problem& p, int64_t chunk_tokens, int64_t seg_chunks) {
  ChunkTables t;
  for (int64_t n = 0; n < p.N; ++n) {
    t.first.push_back(t.chunks());
    if (seg_chunks > 0) {
      t.seq_seg0.push_back(t.segs());
      const int64_t own = (p.seq_len[n] + chunk_tokens - 1) / chunk_tokens;
      for (int64_t j = 0; j < std::max<int64_t>(own, 1); j += seg_chunks) {
        t.seg_chunk0.push_back(t.first.back() + j);
        t.seg_seq.push_back(n);
      }
    }
    for (int64_t s = 0; s < p.seq_len[n]; s += chunk_tokens) {
      t.tok0.push_back(p.seq_start[n] + s);
      t.len.push_back(std::min(chunk_tokens, p.seq_len[n] - s));
    }
  }
  t.first.push_back(t.chunks());
  if (seg_chunks > 0) {
    t.seg_chunk0.push_back(t.chunks());
    t.seq_seg0.push_back(t.segs());
  }
  return t;
}

// Makespan of blocks of the given lengths launched in order onto `slots` multiprocessors, one block each at a time.
double makespan(const std::vector<double>& blocks, int64_t slots) {
  std::priority_queue<double, std::vector<double>, std::greater<>> free_at;
  for (int64_t i = 0; i < slots; ++i) free_at.push(0.0);
  double end = 0.0;
  for (double b : blocks) {
    const double start = free_at.top();
    free_at.pop();
    free_at.push(start + b);
    end = std::max(end, start + b);
  }
  return end;
}

// The longest run of chunks (of chunk_tokens tokens) a segment of a sequential state pass takes: the forward's
// (params.h, ChunkWork) and the backward's state-gradient pass (Gdn2BwdParams). Context parallelism cuts long
// sequences only when the (64 columns, value head, sequence) blocks cannot fill the chip. The cost model, in chunk
// steps: each pass's blocks scheduled in launch order, one per multiprocessor (the passes' shared memory allows no
// more); a transition block step costs `transition_cost` of a pass block step (the forward's writes no output), and
// the scan about one step per segment boundary. A cut must save at least a tenth.
int64_t segment_chunks(const Gdn2Problem& p, int64_t chunk_tokens, int64_t vtiles, int64_t ktiles,
                       double transition_cost) {
  std::vector<int64_t> chunks(static_cast<size_t>(p.N));
  int64_t longest = 0;
  for (int64_t n = 0; n < p.N; ++n)
    longest = std::max(longest, chunks[n] = (p.seq_len[n] + chunk_tokens - 1) / chunk_tokens);
  const int64_t sms = sm_count();
  if (vtiles * p.HV * p.N >= sms || longest < 8) return std::max<int64_t>(longest, 1);
  auto cost = [&](int64_t len) {
    std::vector<double> transition, state;
    int64_t cuts = 0;
    for (int64_t n = 0; n < p.N; ++n) {
      const int64_t segs = std::max<int64_t>(1, (chunks[n] + len - 1) / len);
      cuts = std::max(cuts, segs - 1);
      for (int64_t s = 0; s < segs; ++s) {
        const int64_t steps = std::min(len, chunks[n] - s * len);
        for (int64_t b = 0; b < p.HV * vtiles; ++b) state.push_back(static_cast<double>(steps));
        if (s + 1 < segs)
          for (int64_t b = 0; b < p.HV * (vtiles + ktiles); ++b)
            transition.push_back(transition_cost * static_cast<double>(steps));
      }
    }
    return makespan(transition, sms) + makespan(state, sms) + static_cast<double>(cuts);
  };
  int64_t best = longest;
  const double whole = cost(longest);
  double best_cost = whole;
  for (int64_t parts : {2, 3, 4, 6, 8, 12, 16}) {
    const int64_t len = (longest + parts - 1) / parts;
    if (len < 4) break;
    const double c = cost(len);
    if (c < best_cost && c < 0.9 * whole) best = len, best_cost = c;
  }
  return best;
}

// with_a: also A = (I + T)^-1 per (chunk, value head), which the backward reads; a tensor-core forward with
// chunk_states keeps it too (its workspace is what the backward reuses, Gdn2Outputs::work).
WorkLayout work_layout(const Gdn2Problem& p, const Gdn2Inputs& in, bool chunk, bool with_a = false) {
  WorkLayout w;
  auto take = [&w](int64_t bytes) {
    const int64_t at = w.total;
    w.total += (bytes + 255) / 256 * 256;
    return at;
  };
  if (in.cu_seqlens.defined()) w.offsets = take((p.N + 1) * 8);
  const bool tensor_cores = chunk && chunk_uses_tensor_cores(p, in);
  if (!tensor_cores && !(chunk && p.chunk_states)) return w;
  for (int64_t n = 0; n < p.N; ++n) w.chunks += chunks_of(p.seq_len[n]);
  GDN2_CHECK(w.chunks * p.HV < (int64_t{1} << 31), UnsupportedError, "CUDA GDN-2 chunk path: ", w.chunks,
             " chunks x ", p.HV, " heads is too many");
  if (!tensor_cores) {  // the CUDA-core path numbers its per-chunk states by the chunk tables alone
    w.tables = take((2 * w.chunks + p.N + 1) * 8);
    return w;
  }
  w.kmax = kmax_for(static_cast<int>(p.K));
  w.vpad = (p.V + 63) / 64 * 64;
  w.seg_chunks = segment_chunks(p, kChunk, w.vpad / 64, w.kmax / 64, 0.7);
  for (int64_t n = 0; n < p.N; ++n)
    w.segs += std::max<int64_t>(1, (chunks_of(p.seq_len[n]) + w.seg_chunks - 1) / w.seg_chunks);
  const int64_t blocks = w.chunks * p.HV;
  w.tables = take((2 * w.chunks + p.N + 1 + 2 * w.segs + 1 + p.N + 1) * 8);
  if (w.segs > p.N) {
    w.seg_state = take(w.segs * p.HV * w.kmax * (w.vpad + w.kmax) * 4);
    w.seg_h0 = take(w.segs * p.HV * w.kmax * w.vpad * 4);
  }
  w.W = take(blocks * kChunk * w.kmax * 2);
  w.qg = take(blocks * kChunk * w.kmax * 2);
  w.kgT = take(blocks * kChunk * w.kmax * 2);
  w.U = take(blocks * kChunk * w.vpad * 2);
  w.P = take(blocks * kChunk * kChunk * 2);
  w.gamma = take(blocks * w.kmax * 4);
  if (with_a || p.chunk_states) w.A = take(blocks * kChunk * kChunk * 2);
  return w;
}

struct Launch {
  Gdn2Params params;
  Tensor workspace;       // owned when the caller gave none
  Tensor a_log, dt_bias;  // F32 copies of the in-op gate's parameters
};

// Fills the workspace's host-made parts (offsets, chunk tables) and points the parameter block at it.
void work_bind(const Gdn2Problem& p, const WorkLayout& w, std::byte* base, Gdn2Params& k) {
  if (w.offsets >= 0) {
    std::vector<int64_t> off(p.seq_start.begin(), p.seq_start.end());
    off.push_back(p.N > 0 ? p.seq_start.back() + p.seq_len.back() : 0);
    upload(base + w.offsets, off);
    k.seq_offsets = reinterpret_cast<const int64_t*>(base + w.offsets);
  }
  if (w.tables < 0) return;
  const std::vector<int64_t> tables = chunk_tables(p, kChunk, w.seg_chunks).packed();
  upload(base + w.tables, tables);
  ChunkWork& cw = k.chunk;
  const auto* t = reinterpret_cast<const int64_t*>(base + w.tables);
  cw.chunk_tok0 = t, cw.chunk_len = t + w.chunks, cw.seq_chunk0 = t + 2 * w.chunks;
  cw.chunks = static_cast<int32_t>(w.chunks);
  if (w.seg_chunks == 0) return;  // the CUDA-core path
  const int64_t* segt = cw.seq_chunk0 + p.N + 1;
  cw.seg_chunk0 = segt, cw.seg_seq = segt + w.segs + 1, cw.seq_seg0 = segt + 2 * w.segs + 1;
  cw.segs = static_cast<int32_t>(w.segs);
  if (w.seg_state >= 0) {
    cw.seg_state = reinterpret_cast<float*>(base + w.seg_state);
    cw.seg_h0 = reinterpret_cast<float*>(base + w.seg_h0);
  }
  cw.kmax = static_cast<int32_t>(w.kmax);
  cw.vpad = static_cast<int32_t>(w.vpad);
  cw.W = base + w.W, cw.qg = base + w.qg, cw.kgT = base + w.kgT, cw.U = base + w.U, cw.P = base + w.P;
  cw.gamma = reinterpret_cast<float*>(base + w.gamma);
  if (w.A >= 0) cw.A = base + w.A;
}

// The parameter block of one launch; its workspace is `workspace` (at least work_layout(...).total bytes of device
// memory) or, when null, allocated and owned by the Launch.
Launch make_params(const Gdn2Problem& p, const Gdn2Inputs& in, bool chunk, void* workspace = nullptr,
                   int64_t workspace_bytes = 0, bool with_a = false) {
  Launch l;
  Gdn2Params& k = l.params;
  k.stream = stream();
  k.N = static_cast<int32_t>(p.N);
  k.H = static_cast<int32_t>(p.H);
  k.HV = static_cast<int32_t>(p.HV);
  k.K = static_cast<int32_t>(p.K);
  k.V = static_cast<int32_t>(p.V);
  k.T = p.T;
  k.q = view(in.q, {GateForm::channel, p.H}, p.K, "q");
  k.k = view(in.k, {GateForm::channel, p.H}, p.K, "k");
  k.v = view(in.v, {GateForm::channel, p.HV}, p.V, "v");
  k.g = view(in.g_log, p.g, p.K, "g_log");
  k.b = view(in.b, p.b, p.K, "b");
  k.w = view(in.w, p.w, p.V, "w");
  k.b.sigmoid = k.w.sigmoid = p.gates_logits;  // the token-recurrent kernel's load_gate applies it
  GDN2_CHECK(!p.gates_logits || !chunk, UnsupportedError,
             "CUDA GDN-2 chunk kernels take the gates b and w, not their logits (the op resolves them first)");
  k.scale = static_cast<float>(p.scale);
  k.l2norm = p.qk_l2norm;
  if (p.gate_in_op) {  // the kernels form g from f (load.cuh, load_decay)
    l.a_log = as_f32(in.A_log);
    k.a_log = static_cast<const float*>(l.a_log.raw());
    if (in.dt_bias.defined()) {
      l.dt_bias = as_f32(in.dt_bias);
      k.dt_bias = static_cast<const float*>(l.dt_bias.raw());
    }
  }
  k.vec8 = p.K % 8 == 0 && p.V % 8 == 0;
  for (const InputView* x : {&k.q, &k.k, &k.v, &k.g, &k.b, &k.w})
    if (x->form == Gate::channel)
      k.vec8 = k.vec8 && reinterpret_cast<std::uintptr_t>(x->ptr) % 16 == 0 && x->stride_token % 8 == 0 &&
               x->stride_head % 8 == 0;
  const WorkLayout w = work_layout(p, in, chunk, with_a);
  if (workspace == nullptr && w.total > 0) {
    l.workspace = Tensor::empty({w.total}, DType::u8, Device::cuda);
    workspace = l.workspace.raw_mut();
    workspace_bytes = w.total;
  }
  GDN2_CHECK(workspace_bytes >= w.total && reinterpret_cast<std::uintptr_t>(workspace) % 256 == 0, ShapeError,
             "CUDA GDN-2: the workspace must be 256-byte aligned and hold ", w.total, " bytes, got ", workspace_bytes);
  if (w.total > 0) work_bind(p, w, static_cast<std::byte*>(workspace), k);
  return l;
}

DType out_dtype(const Tensor& v) { return v.dtype() == DType::bf16 || v.dtype() == DType::f16 ? v.dtype() : DType::f32; }

// The chunk forward's optional per-chunk states (F32 [chunks, HV, K, V], chunks of 64 tokens).
Tensor chunk_states_output(const Gdn2Problem& p, Gdn2Params& k) {
  if (!p.chunk_states) return Tensor();
  GDN2_CHECK(p.chunk_size == 64, UnsupportedError, "CUDA GDN-2 chunk forward: per-chunk states come in chunks of 64 ",
             "tokens; got chunk_size ", p.chunk_size);
  Tensor h = Tensor::empty({p.chunks(), p.HV, p.K, p.V}, DType::f32, Device::cuda);
  k.h_chunks = static_cast<float*>(h.raw_mut());
  return h;
}

Gdn2Outputs run(const Gdn2Problem& p, const Gdn2Inputs& in, void (*launch)(const Gdn2Params&)) {
  Launch l = make_params(p, in, launch == launch_chunk_fwd);
  Gdn2Outputs out;
  out.o = Tensor::empty({p.B, p.T, p.HV, p.V}, out_dtype(in.v), Device::cuda);
  out.ht = Tensor::empty({p.N, p.HV, p.K, p.V}, DType::f32, Device::cuda);
  Tensor h0;
  if (in.h0.defined()) {
    h0 = in.h0.dtype() == DType::f32 ? in.h0 : in.h0.to(DType::f32);
    l.params.h0 = h0.raw();
  }
  l.params.o = out.o.raw_mut();
  l.params.o_type = elem_type(out.o, kOp, "o");
  l.params.ht = out.ht.raw_mut();
  l.params.state_type = ElemType::f32;
  if (launch == launch_chunk_fwd) {
    out.h = chunk_states_output(p, l.params);
    if (out.h.defined() && chunk_uses_tensor_cores(p, in)) out.work = l.workspace;  // kept for the backward
  }
  launch(l.params);
  return out;
}

}  // namespace

Gdn2Outputs gdn2_chunk_fwd(const Gdn2Problem& p, const Gdn2Inputs& in) { return run(p, in, launch_chunk_fwd); }

namespace {

float* f32_ptr(Tensor& x) { return x.defined() ? static_cast<float*>(x.raw_mut()) : nullptr; }

// The cotangents and the initial state's gradient both backward paths bind: d_o as given, dht in F32, and dh0 (F32
// [N, HV, K, V]) when the problem has an initial state.
struct BwdEnds {
  Tensor dht32, dh0;

  template <class Params>
  BwdEnds(const Gdn2Problem& p, const Tensor& d_o, const Tensor& dht, Params& b) {
    b.d_o = d_o.raw();
    b.d_o_type = elem_type(d_o, kOp, "d_o");
    if (dht.defined()) {
      dht32 = as_f32(dht);
      b.dht = static_cast<const float*>(dht32.raw());
    }
    if (p.has_h0) {
      dh0 = Tensor::empty({p.N, p.HV, p.K, p.V}, DType::f32, Device::cuda);
      b.dh0 = static_cast<float*>(dh0.raw_mut());
    }
  }
};

// The per-value-head gradient buffers both backward paths fill, F32 [tokens, HV, dim] (a gate's only where the gate is
// present; the gradient kernels write every element), and their sum to the inputs' shapes. With `direct` (the
// tensor-core path and Gdn2Options::grads_like_inputs), an input gradient that needs no sum over heads and belongs to
// a bf16/fp16 input is written in that dtype by the kernels instead (oq .. ow); v's and w's then need no F32 buffer.
struct GradBuffers {
  Tensor gq, gk, gv, gg, gb, gw;
  Tensor oq, ok, ov, ob, ow;

  GradBuffers(const Gdn2Problem& p, const Gdn2Inputs& in, bool direct = false) {
    auto out = [&](const GateSpec& spec, const Tensor& x) {
      const bool half = x.defined() && (x.dtype() == DType::bf16 || x.dtype() == DType::f16);
      return direct && half && spec.form == GateForm::channel && spec.heads == p.HV
                 ? Tensor::empty(x.shape(), x.dtype(), Device::cuda)
                 : Tensor();
    };
    oq = out({GateForm::channel, p.H}, in.q), ok = out({GateForm::channel, p.H}, in.k);
    ov = out({GateForm::channel, p.HV}, in.v), ob = out(p.b, in.b), ow = out(p.w, in.w);
    auto buffer = [&](bool on, int64_t dim) {
      return on ? Tensor::empty({p.tokens(), p.HV, dim}, DType::f32, Device::cuda) : Tensor();
    };
    gq = buffer(true, p.K), gk = buffer(true, p.K), gv = buffer(!ov.defined(), p.V);
    gg = buffer(p.g.form != GateForm::absent, p.K), gb = buffer(p.b.form != GateForm::absent, p.K);
    gw = buffer(p.w.form != GateForm::absent && !ow.defined(), p.V);
  }

  // Points a parameter block's gq .. gw at the buffers.
  void bind(Gdn2BwdParams& b) {
    b.gq = f32_ptr(gq), b.gk = f32_ptr(gk), b.gv = f32_ptr(gv), b.gg = f32_ptr(gg), b.gb = f32_ptr(gb);
    b.gw = f32_ptr(gw);
  }

  // The tensor-core backward's buffers and outputs (each output its F32 buffer unless written directly).
  void bind(Gdn2Bwd64Params& b) {
    b.gq = f32_ptr(gq), b.gk = f32_ptr(gk), b.gg = f32_ptr(gg), b.gb = f32_ptr(gb);
    auto target = [](Tensor& direct, Tensor& buf) {
      Tensor& t = direct.defined() ? direct : buf;
      return t.defined() ? GradOut{t.raw_mut(), elem_type(t, kOp, "gradient")} : GradOut{};
    };
    b.oq = target(oq, gq), b.ok = target(ok, gk), b.ob = target(ob, gb), b.ov = target(ov, gv), b.ow = target(ow, gw);
  }

  // Summed over value-head groups (and over channels for per-head gates) to the inputs' shapes; waits for the device.
  Gdn2Grads to_inputs(const Gdn2Problem& p, const Gdn2Inputs& in, const Tensor& dh0, cudaStream_t stream) const {
    auto reduce = [&](const Tensor& buf, const GateSpec& spec, int64_t dim, const Tensor& like) -> Tensor {
      if (!buf.defined()) return Tensor();
      if (spec.form == GateForm::channel && spec.heads == p.HV) return buf.reshape(like.shape());  // nothing to sum
      Tensor out = Tensor::empty(like.shape(), DType::f32, Device::cuda);
      launch_reduce_heads(static_cast<const float*>(buf.raw()), p.tokens(), static_cast<int>(p.HV),
                          static_cast<int>(dim), static_cast<int>(spec.heads), spec.form == GateForm::channel,
                          static_cast<float*>(out.raw_mut()), stream);
      return out;
    };
    Gdn2Grads r;
    r.dq = oq.defined() ? oq : reduce(gq, {GateForm::channel, p.H}, p.K, in.q);
    r.dk = ok.defined() ? ok : reduce(gk, {GateForm::channel, p.H}, p.K, in.k);
    r.dv = ov.defined() ? ov : reduce(gv, {GateForm::channel, p.HV}, p.V, in.v);
    r.dg = reduce(gg, p.g, p.K, in.g_log);
    r.db = ob.defined() ? ob : reduce(gb, p.b, p.K, in.b);
    r.dw = ow.defined() ? ow : reduce(gw, p.w, p.V, in.w);
    r.dh0 = dh0;
    return r;
  }
};

// bf16/fp16 inputs: the forward recomputed on tensor cores over its chunks of 64 tokens keeps its workspace (W, qg,
// kgT, U, P, gamma and A per chunk) and its states every 64 tokens; or the stored states alone (then only its intra
// kernel runs); or the stored states and the forward's own workspace (`work`, Gdn2Outputs::work: nothing runs again).
// The state-gradient pass and the gradient kernels read them (chunk_bwd64.cu).
Gdn2Grads chunk_bwd_tensor_cores(const Gdn2Problem& p, const Gdn2Inputs& in, const Tensor& d_o, const Tensor& dht,
                                 const Tensor& h64_stored, const Tensor& work) {
  Launch fwd = work.defined() ? make_params(p, in, true, const_cast<Tensor&>(work).raw_mut(),
                                            static_cast<int64_t>(work.nbytes()), true)
                              : make_params(p, in, true, nullptr, 0, true);
  Gdn2Params& f = fwd.params;
  const int64_t chunks = f.chunk.chunks;
  Tensor h0;
  if (in.h0.defined()) {
    h0 = as_f32(in.h0);
    f.h0 = h0.raw();
  }
  f.state_type = ElemType::f32;
  f.o = nullptr;
  f.ht = nullptr;
  Tensor h64;
  if (h64_stored.defined()) {
    GDN2_CHECK(h64_stored.shape() == (Shape{chunks, p.HV, p.K, p.V}) && h64_stored.dtype() == DType::f32 &&
                   h64_stored.device() == Device::cuda,
               ShapeError, "gdn2_chunk_bwd on CUDA: stored states must be the forward's F32 states every 64 tokens ",
               shape_str({chunks, p.HV, p.K, p.V}), ", got ", h64_stored.describe());
    h64 = h64_stored;
  } else {
    h64 = Tensor::empty({chunks, p.HV, p.K, p.V}, DType::f32, Device::cuda);
    f.h_chunks = static_cast<float*>(h64.raw_mut());
  }
  Gdn2Bwd64Params b;
  b.f = f;
  const BwdEnds ends(p, d_o, dht, b);
  b.h = static_cast<const float*>(h64.raw());
  Tensor dh = Tensor::empty({std::max<int64_t>(chunks, 1), p.HV, p.K, p.V}, DType::bf16, Device::cuda);
  b.dh = dh.raw_mut();
  // Every buffer before the first launch: an allocation waits for the device (device_memory.cu), which would hold the
  // next launch back until the previous kernel ends.
  GradBuffers g(p, in, p.grads_like_inputs);
  g.bind(b);
  const int64_t blocks = std::max<int64_t>(chunks, 1) * p.HV;  // (chunk, value head) pairs, at least one
  Tensor dpt = Tensor::empty({blocks * 2 * kChunk * kChunk}, DType::f32, Device::cuda);
  Tensor dgl = Tensor::empty({blocks * f.chunk.kmax}, DType::f32, Device::cuda);
  b.dpt = f32_ptr(dpt), b.dgl = f32_ptr(dgl);
  if (!h64_stored.defined())
    launch_chunk_fwd(f);
  else if (chunks > 0 && !work.defined())
    launch_chunk_intra(f);
  launch_chunk_bwd64_states(b);
  launch_chunk_bwd64(b);
  return g.to_inputs(p, in, ends.dh0, f.stream);
}

}  // namespace

Gdn2Grads gdn2_chunk_bwd(const Gdn2Problem& p, const Gdn2Inputs& in, const Tensor& d_o, const Tensor& dht,
                         const Tensor& h64_stored, const Tensor& work) {
  GDN2_CHECK(d_o.device() == Device::cuda && (!dht.defined() || dht.device() == Device::cuda), ShapeError,
             "gdn2_chunk_bwd: d_o and dht must be on the inputs' device (cuda), got ", d_o.describe());
  const bool tensor_cores = chunk_uses_tensor_cores(p, in);
  // The workspace's size is checked where it is bound (make_params).
  GDN2_CHECK(!work.defined() || (tensor_cores && h64_stored.defined() && work.device() == Device::cuda &&
                                 work.dtype() == DType::u8),
             ShapeError, "gdn2_chunk_bwd on CUDA: `work` must be the Gdn2Outputs::work of the chunk_states forward of ",
             "these bf16/fp16 inputs, with its h; got ", work.describe());
  if (tensor_cores) return chunk_bwd_tensor_cores(p, in, d_o, dht, h64_stored, work);
  // fp32 inputs: the fp32 kernels over chunks of 32 tokens (fp32 budget).
  constexpr int64_t kBwdChunk = 32;  // chunk_bwd.cu
  Launch l = make_params(p, in, false);
  Gdn2BwdParams bp;
  bp.f = l.params;
  // Chunk tables for chunks of 32 tokens, with the segments of the state-gradient pass (context parallelism when the
  // blocks cannot fill the chip).
  const int64_t vtiles = (p.V + 63) / 64, kmax = kmax_for(static_cast<int>(p.K));
  const ChunkTables ct = chunk_tables(p, kBwdChunk, segment_chunks(p, kBwdChunk, vtiles, kmax / 64, 0.9));
  const int64_t chunks = ct.chunks(), segs = ct.segs();
  GDN2_CHECK(chunks * p.HV < (int64_t{1} << 31), UnsupportedError, "CUDA GDN-2 chunk backward: ", chunks,
             " chunks x ", p.HV, " heads is too many");
  const std::vector<int64_t> tables = ct.packed();
  const Tensor tab = device_copy(tables);
  const auto* t = static_cast<const int64_t*>(tab.raw());
  bp.chunk_tok0 = t, bp.chunk_len = t + chunks, bp.seq_chunk0 = t + 2 * chunks;
  bp.chunks = static_cast<int32_t>(chunks);
  const int64_t* st = bp.seq_chunk0 + p.N + 1;
  bp.seg_chunk0 = st, bp.seg_seq = st + segs + 1, bp.seq_seg0 = st + 2 * segs + 1;
  bp.segs = static_cast<int32_t>(segs);
  bp.vpad = static_cast<int32_t>(vtiles * 64);
  Tensor seg_state, seg_dS;
  if (segs > p.N) {
    seg_state = Tensor::empty({segs * p.HV * kmax * (bp.vpad + kmax)}, DType::f32, Device::cuda);
    seg_dS = Tensor::empty({segs * p.HV * kmax * bp.vpad}, DType::f32, Device::cuda);
    bp.seg_state = static_cast<float*>(seg_state.raw_mut());
    bp.seg_dS = static_cast<float*>(seg_dS.raw_mut());
  }

  // The forward's states entering every 32-token chunk: the stored states every 64 tokens (h64_stored) completed by the
  // states pass from the chunk coefficients, or recomputed by the exact CUDA-core forward every 32 tokens.
  Tensor h = Tensor::empty({chunks, p.HV, p.K, p.V}, DType::f32, Device::cuda);
  Tensor dh = Tensor::empty({chunks, p.HV, p.K, p.V}, DType::f32, Device::cuda);
  Tensor h0;
  if (in.h0.defined()) {
    h0 = as_f32(in.h0);
    bp.f.h0 = h0.raw();
  }
  bp.f.state_type = ElemType::f32;
  bp.f.o = nullptr;
  bp.f.ht = nullptr;
  bp.f.chunk.seq_chunk0 = bp.seq_chunk0;
  Tensor h64, sub_tables;
  if (h64_stored.defined()) {
    h64 = h64_stored;
  } else {
    bp.f.h_chunks = static_cast<float*>(h.raw_mut());
    bp.f.h_chunk_tokens = static_cast<int32_t>(kBwdChunk);
    launch_chunk_fwd_exact(bp.f);
  }
  if (h64.defined()) {
    const ChunkTables c64 = chunk_tables(p, kChunk, 0);
    const int64_t chunks64 = c64.chunks();
    std::vector<int64_t> sub;  // per 64-token chunk: its first 32-token chunk, then (below) its length
    for (int64_t n = 0; n < p.N; ++n)
      for (int64_t c = c64.first[n]; c < c64.first[n + 1]; ++c)
        sub.push_back(ct.first[n] + (c - c64.first[n]) * (kChunk / kBwdChunk));
    GDN2_CHECK(h64.shape() == (Shape{chunks64, p.HV, p.K, p.V}) && h64.dtype() == DType::f32 &&
                   h64.device() == Device::cuda,
               ShapeError, "gdn2_chunk_bwd on CUDA: stored states must be the forward's F32 states every 64 tokens ",
               shape_str({chunks64, p.HV, p.K, p.V}), ", got ", h64.describe());
    sub.insert(sub.end(), c64.len.begin(), c64.len.end());
    sub_tables = device_copy(sub);
    bp.h64 = static_cast<const float*>(h64.raw());
    bp.first32 = static_cast<const int64_t*>(sub_tables.raw());
    bp.len64 = bp.first32 + chunks64;
    bp.chunks64 = static_cast<int32_t>(chunks64);
    bp.h_sub = static_cast<float*>(h.raw_mut());
    bp.coef_u_cols = bp.vpad;
  }

  const BwdEnds ends(p, d_o, dht, bp);
  bp.h = static_cast<const float*>(h.raw());
  bp.dh = static_cast<float*>(dh.raw_mut());
  Tensor coef, tp;  // each chunk's coefficients for the states pass (kernels.h, chunk_coef_floats); T and P
  if (chunks > 0) {
    coef = Tensor::empty({chunks * p.HV * chunk_coef_floats(kmax, bp.coef_u_cols)}, DType::f32, Device::cuda);
    tp = Tensor::empty({chunks, p.HV, 2, kBwdChunk, kBwdChunk}, DType::f32, Device::cuda);
    bp.coef = static_cast<float*>(coef.raw_mut());
    bp.tp = static_cast<float*>(tp.raw_mut());
  }
  launch_chunk_bwd_states(bp);
  coef = Tensor();  // the gradient buffers below may reuse these
  h64 = Tensor();
  bp.coef = nullptr;
  bp.h64 = nullptr;
  GradBuffers g(p, in);
  g.bind(bp);
  launch_chunk_bwd_grads(bp);
  return g.to_inputs(p, in, ends.dh0, bp.f.stream);
}

Gdn2Outputs gdn2_recurrent(const Gdn2Problem& p, const Gdn2Inputs& in) { return run(p, in, launch_recurrent); }

Tensor gdn2_recurrent_step(const Gdn2Problem& p, const Gdn2Inputs& in, Tensor& state) {
  GDN2_CHECK(state.device() == Device::cuda && (state.dtype() == DType::f32 || state.dtype() == DType::bf16),
             ShapeError, "gdn2_recurrent_step: a CUDA state must be F32 or BF16 on the GPU, got ", state.describe());
  Launch l = make_params(p, in, false);
  Tensor o = Tensor::empty({p.B, p.T, p.HV, p.V}, out_dtype(in.v), Device::cuda);
  l.params.h0 = state.raw();
  l.params.ht = state.raw_mut();
  l.params.state_type = elem_type(state, kOp, "state");
  l.params.o = o.raw_mut();
  l.params.o_type = elem_type(o, kOp, "o");
  launch_recurrent(l.params);
  return o;
}

}  // namespace gdn2::cuda

namespace gdn2::cuda {

struct CudaPlan {
  Launch launch;
  Tensor h0;  // F32 copy of a non-F32 h0
  bool chunk = false;
  cudaStream_t stream = nullptr;
  cudaEvent_t before = nullptr, after = nullptr;  // joins with the work stream (plan_run)
  ~CudaPlan() {
    if (stream != nullptr) {
      cudaStreamSynchronize(stream);  // the outputs and workspace are released after the last run
      cudaStreamDestroy(stream);
    }
    if (before != nullptr) cudaEventDestroy(before);
    if (after != nullptr) cudaEventDestroy(after);
  }
};

int64_t workspace_bytes(const Gdn2Problem& p, const Gdn2Inputs& in, bool chunk) {
  return work_layout(p, in, chunk).total;
}

std::shared_ptr<CudaPlan> plan_make(const Gdn2Problem& p, const Gdn2Inputs& in, bool chunk, Tensor* state,
                                    Tensor* workspace, Gdn2Outputs& outputs) {
  auto plan = std::make_shared<CudaPlan>();
  if (workspace != nullptr) {
    GDN2_CHECK(workspace->device() == Device::cuda, ShapeError, "Gdn2Plan: the workspace must be a CUDA tensor, got ",
               workspace->describe());
    plan->launch = make_params(p, in, chunk, workspace->raw_mut(), static_cast<int64_t>(workspace->nbytes()));
  } else {
    plan->launch = make_params(p, in, chunk);
  }
  plan->chunk = chunk;
  Gdn2Params& k = plan->launch.params;
  outputs.o = Tensor::empty({p.B, p.T, p.HV, p.V}, out_dtype(in.v), Device::cuda);
  k.o = outputs.o.raw_mut();
  k.o_type = elem_type(outputs.o, kOp, "o");
  if (state != nullptr) {
    k.h0 = state->raw();
    k.ht = state->raw_mut();
    k.state_type = elem_type(*state, kOp, "state");
  } else {
    outputs.ht = Tensor::empty({p.N, p.HV, p.K, p.V}, DType::f32, Device::cuda);
    if (in.h0.defined()) {
      plan->h0 = in.h0.dtype() == DType::f32 ? in.h0 : in.h0.to(DType::f32);
      k.h0 = plan->h0.raw();
    }
    k.ht = outputs.ht.raw_mut();
    k.state_type = ElemType::f32;
    if (chunk) outputs.h = chunk_states_output(p, k);
    if (outputs.h.defined() && chunk_uses_tensor_cores(p, in))
      outputs.work = workspace != nullptr ? *workspace : plan->launch.workspace;
  }
  GDN2_CUDA_CHECK(cudaStreamCreateWithFlags(&plan->stream, cudaStreamNonBlocking));
  GDN2_CUDA_CHECK(cudaEventCreateWithFlags(&plan->before, cudaEventDisableTiming));
  GDN2_CUDA_CHECK(cudaEventCreateWithFlags(&plan->after, cudaEventDisableTiming));
  return plan;
}

void plan_run(CudaPlan& plan, void* stream) {
  Gdn2Params k = plan.launch.params;
  k.stream = stream != nullptr ? static_cast<cudaStream_t>(stream) : plan.stream;
  // Tensor memory is stream-ordered on the work stream (device_memory.cu): outside a graph capture, the run waits
  // for the work stream's work (the inputs' writers) and the work stream waits for the run (later frees).
  cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
  GDN2_CUDA_CHECK(cudaStreamIsCapturing(k.stream, &capture));
  const cudaStream_t work = gdn2::cuda::stream();
  const bool join = capture == cudaStreamCaptureStatusNone && k.stream != work;
  if (join) {
    GDN2_CUDA_CHECK(cudaEventRecord(plan.before, work));
    GDN2_CUDA_CHECK(cudaStreamWaitEvent(k.stream, plan.before, 0));
  }
  if (plan.chunk)
    launch_chunk_fwd(k);
  else
    launch_recurrent(k);
  if (join) {
    GDN2_CUDA_CHECK(cudaEventRecord(plan.after, k.stream));
    GDN2_CUDA_CHECK(cudaStreamWaitEvent(work, plan.after, 0));
  }
}

void plan_sync(CudaPlan& plan) { GDN2_CUDA_CHECK(cudaStreamSynchronize(plan.stream)); }

}  // namespace gdn2::cuda
