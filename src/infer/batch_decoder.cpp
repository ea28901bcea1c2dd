// Continuous batching over fixed-memory slots: per-sequence bookkeeping on the host, one batched decode per step
// (LanguageModel::decode_slots), greedy picks on the device (argmax_rows) or sampling on the host, and on the GPU one
// CUDA graph per power-of-two batch bucket.
//
// Greedy decode on the GPU runs one step ahead: each graph ends by feeding its picks into the next step's inputs on the
// device, so the next graph is launched before this one's picks reach the host, and the GPU does not wait for the host
// between steps. A join or leave first waits for the decode in flight and keeps its picks (Sequence::next); a joining
// prompt is then fed one token further, so every row is again one token ahead.
#include "gdn2/batch_decoder.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <random>

#include "gdn2/ops/dense.h"
#ifdef GDN2_WITH_CUDA
#include "cuda/decode_feed.h"
#include "cuda/graph.h"
#endif

namespace gdn2 {

namespace {

bool is_greedy(const SamplingOptions& o) { return o.temperature == 0 || o.top_k == 1; }

void check_sampling(const SamplingOptions& o) {
  GDN2_CHECK(o.max_new_tokens >= 1, ValueError, "max_new_tokens must be >= 1, got ", o.max_new_tokens);
  GDN2_CHECK(o.temperature >= 0 && std::isfinite(o.temperature), ValueError, "temperature must be >= 0, got ",
             o.temperature);
  GDN2_CHECK(o.top_p > 0 && o.top_p <= 1, ValueError, "top_p must be in (0, 1], got ", o.top_p);
  GDN2_CHECK(o.top_k >= 0, ValueError, "top_k must be >= 0, got ", o.top_k);
}

struct Sequence {
  int64_t id = 0;
  int64_t length = 0;   // tokens in its slot's caches before `pending` (pending's position)
  int32_t pending = 0;  // picked, not yet emitted
  bool fed = false;     // pending is in the slot's caches already (or a decode in flight writes it)
  std::optional<int32_t> next;  // with fed: the token picked after pending
  int64_t emitted = 0;
  SamplingOptions options;
  std::mt19937_64 rng;
};

}  // namespace

struct BatchDecoder::Impl {
  LanguageModel& model;
  BatchDecoderOptions opt;
  InferenceState slots;
  std::vector<Sequence> rows;  // rows[i] holds slot i
  int64_t next_id = 0;
  int64_t V = 0;
#ifdef GDN2_WITH_CUDA
  // Graph mode: inputs [ids | positions | lengths] of `capacity` each, outputs of the last step, graphs by bucket.
  Tensor io, out_ids, out_logits;
  std::map<int64_t, cuda::Graph> graphs;
  // Pinned copies of two consecutive steps' picks; `inflight` names the one a decode in flight fills (it fed every
  // row's pending), -1 when none. Declared after the graphs: destroyed first, each waiting for its copy.
  std::unique_ptr<cuda::Readback> readback[2];
  int inflight = -1;
#endif

  Impl(LanguageModel& m, const BatchDecoderOptions& o) : model(m), opt(o) {
    GDN2_CHECK(o.capacity >= 1 && o.max_len >= 2 && o.prefill_chunk >= 0, ValueError,
               "batch decoder: capacity must be >= 1, max_len >= 2 and prefill_chunk >= 0, got ", o.capacity, ", ",
               o.max_len, ", ", o.prefill_chunk);
    V = model.config().vocab_size;
    slots = model.new_slots(o.capacity, o.max_len, o.state_dtype);
#ifdef GDN2_WITH_CUDA
    if (model.device() == Device::cuda && o.cuda_graphs) capture_graphs();
#endif
  }

  bool graph_mode() const {
#ifdef GDN2_WITH_CUDA
    return !graphs.empty();
#else
    return false;
#endif
  }

  int64_t bucket(int64_t n) const {
    int64_t b = 1;
    while (b < n) b *= 2;
    return std::min(b, opt.capacity);
  }

  // The step's inputs for the first n rows, padded to `count` rows with idle ones (id 0, position -1, length 0: the
  // kernels skip their KV write and attend to nothing).
  std::vector<int32_t> inputs(int64_t n, int64_t count) const {
    std::vector<int32_t> v(static_cast<size_t>(3 * count), 0);
    for (int64_t i = 0; i < count; ++i) {
      const bool busy = i < n;
      v[static_cast<size_t>(i)] = busy ? rows[static_cast<size_t>(i)].pending : 0;
      v[static_cast<size_t>(count + i)] = busy ? static_cast<int32_t>(rows[static_cast<size_t>(i)].length) : -1;
      v[static_cast<size_t>(2 * count + i)] = busy ? static_cast<int32_t>(rows[static_cast<size_t>(i)].length + 1) : 0;
    }
    return v;
  }

#ifdef GDN2_WITH_CUDA
  // The graph-mode step of bucket g on the io buffer: logits and greedy picks into the output buffers.
  void graph_work(int64_t g) {
    const int64_t cap = opt.capacity;
    const Tensor logits = model.decode_slots(io.slice0(0, g), io.slice0(cap, cap + g), io.slice0(2 * cap, 2 * cap + g),
                                             slots);
    const Tensor picks = argmax_rows(logits);
    const size_t lrow = static_cast<size_t>(V) * dtype_size(logits.dtype());
    copy_rows(out_logits, 0, lrow, logits, 0, lrow, lrow * static_cast<size_t>(g), 1);
    copy_rows(out_ids, 0, 4, picks, 0, 4, 4 * static_cast<size_t>(g), 1);
    cuda::advance_decode_feed(io, out_ids, g, cap);  // the inputs of a following step that feeds these picks
  }

  void upload(const std::vector<int32_t>& v) {
    const Tensor host = Tensor::from_vector<int32_t>({static_cast<int64_t>(v.size())}, v);
    copy_rows(io, 0, host.nbytes(), host, 0, host.nbytes(), host.nbytes(), 1);
  }

  // All slots idle: each bucket runs once eagerly (kernel loading, cuBLASLt set-up), then is captured.
  void capture_graphs() {
    const int64_t cap = opt.capacity;
    io = Tensor::zeros({3 * cap}, DType::i32, Device::cuda);
    out_ids = Tensor::zeros({cap}, DType::i32, Device::cuda);
    out_logits = Tensor::zeros({cap, V}, model.compute_dtype(), Device::cuda);
    for (auto& r : readback) r = std::make_unique<cuda::Readback>(4 * static_cast<size_t>(cap));
    upload(inputs(0, cap));
    std::vector<int64_t> buckets;
    for (int64_t b = 1; b < cap; b *= 2) buckets.push_back(b);
    buckets.push_back(cap);
    for (int64_t g : buckets) {
      // Idle rows in the first g of a [3 cap] layout: positions and lengths of rows < g sit at cap + i and 2 cap + i.
      graph_work(g);
      graphs.emplace(g, cuda::Graph([this, g] { graph_work(g); }));
    }
  }
#endif

  // A greedy pick: -1 marks a row with a non-finite logit.
  static int32_t checked(int32_t pick, const Sequence& s) {
    GDN2_CHECK(pick >= 0, ValueError, "the model produced a non-finite logit for sequence ", s.id);
    return pick;
  }

  // Next tokens of the first n rows after a decode (or of `logits` rows for a prefill).
  std::vector<int32_t> pick(const Tensor& logits, const Tensor& greedy_picks, const std::vector<Sequence*>& seqs) {
    const int64_t n = static_cast<int64_t>(seqs.size());
    bool all_greedy = true;
    for (const Sequence* s : seqs) all_greedy = all_greedy && is_greedy(s->options);
    std::vector<int32_t> next(static_cast<size_t>(n));
    if (all_greedy) {
      const Tensor p = greedy_picks.defined() ? greedy_picks.cpu() : argmax_rows(logits).cpu();
      for (int64_t i = 0; i < n; ++i)
        next[static_cast<size_t>(i)] = checked(p.data<int32_t>()[i], *seqs[static_cast<size_t>(i)]);
      return next;
    }
    const Tensor l = logits.to(DType::f32).cpu();
    for (int64_t i = 0; i < n; ++i) {
      Sequence& s = *seqs[static_cast<size_t>(i)];
      next[static_cast<size_t>(i)] = sample_token(l.data<float>() + i * V, V, s.options, s.rng);
    }
    return next;
  }

  bool all_greedy() const {
    return std::all_of(rows.begin(), rows.end(), [](const Sequence& s) { return is_greedy(s.options); });
  }

  // Whether a graph may feed every row's token at position length + ahead: greedy rows (the graph picks them), with
  // that position inside the slots.
  bool can_feed(int64_t ahead) const {
    return all_greedy() &&
           std::all_of(rows.begin(), rows.end(), [&](const Sequence& s) { return s.length + ahead < opt.max_len; });
  }

  // Waits for the decode in flight, if any, and keeps its picks as each row's next token.
  void resolve() {
#ifdef GDN2_WITH_CUDA
    if (inflight < 0) return;
    const auto* p = static_cast<const int32_t*>(readback[inflight]->wait());
    inflight = -1;
    for (size_t r = 0; r < rows.size(); ++r) rows[r].next = checked(p[r], rows[r]);
#endif
  }

  // Each row's pending token was fed and `next` picked after it; `fed`: a decode in flight feeds that one already.
  void take(const std::vector<int32_t>& next, bool fed = false) {
    for (size_t i = 0; i < rows.size(); ++i) {
      rows[i].length += 1;
      rows[i].pending = next[i];
      rows[i].fed = fed;
      rows[i].next.reset();
    }
  }

  std::vector<Sequence*> all_rows() {
    std::vector<Sequence*> seqs;
    for (Sequence& s : rows) seqs.push_back(&s);
    return seqs;
  }

  void decode() {
#ifdef GDN2_WITH_CUDA
    if (graph_mode()) {
      decode_graph();
      return;
    }
#endif
    const auto n = static_cast<int64_t>(rows.size());
    const std::vector<int32_t> v = inputs(n, n);
    auto part = [&](int64_t k) {
      return Tensor::from_vector<int32_t>({n}, std::vector<int32_t>(v.begin() + k * n, v.begin() + (k + 1) * n))
          .to(model.device());
    };
    take(pick(model.decode_slots(part(0), part(1), part(2), slots), Tensor(), all_rows()));
  }

#ifdef GDN2_WITH_CUDA
  // Launches the bucket's graph: on every row's pending token uploaded from the host, or on the inputs the graph
  // before fed on the device.
  void launch(bool from_host) {
    const int64_t n = static_cast<int64_t>(rows.size()), g = bucket(n);
    if (from_host) {
      std::vector<int32_t> v = inputs(n, g), all(static_cast<size_t>(3 * opt.capacity), 0);
      for (int64_t part = 0; part < 3; ++part)  // the bucket reads the first g of each part
        std::copy(v.begin() + part * g, v.begin() + (part + 1) * g, all.begin() + part * opt.capacity);
      upload(all);
    }
    graphs.at(g).launch();
  }

  // Starts the copy of the launched graph's picks into readback[slot], which becomes the one in flight.
  void read_picks(int slot) {
    readback[slot]->start(out_ids, 4 * rows.size());
    inflight = slot;
  }

  void decode_graph() {
    const auto n = static_cast<int64_t>(rows.size());
    if (inflight < 0 && !rows[0].next) {  // every row's pending is still to be fed
      launch(true);
      if (!all_greedy()) {  // sampling on the host from the step's logits
        take(pick(out_logits.slice0(0, n), out_ids.slice0(0, n), all_rows()));
        return;
      }
      read_picks(0);
    }
    if (inflight < 0) {  // every row's next token is known already (a join or leave waited for its decode)
      std::vector<int32_t> next;
      for (const Sequence& s : rows) next.push_back(*s.next);
      take(next);
      if (can_feed(0)) {
        launch(true);
        read_picks(0);
        for (Sequence& s : rows) s.fed = true;
      }
      return;
    }
    // The decode in flight fed every pending token; the next one feeds its picks (on the device) before they are read
    // here.
    const int now = inflight;
    const bool more = can_feed(1);
    if (more) {
      launch(false);
      read_picks(1 - now);
    } else {
      inflight = -1;
    }
    const auto* p = static_cast<const int32_t*>(readback[now]->wait());
    std::vector<int32_t> next;
    for (int64_t i = 0; i < n; ++i) next.push_back(checked(p[i], rows[static_cast<size_t>(i)]));
    take(next, more);
  }
#endif

  void remove_row(size_t r) {
    resolve();
    const size_t last = rows.size() - 1;
    if (r != last) {
      model.move_slot(slots, static_cast<int64_t>(last), static_cast<int64_t>(r));
      rows[r] = std::move(rows[last]);
    }
    rows.pop_back();
  }
};

BatchDecoder::BatchDecoder(LanguageModel& model, const BatchDecoderOptions& options)
    : impl_(std::make_unique<Impl>(model, options)) {}
BatchDecoder::~BatchDecoder() = default;

std::vector<int64_t> BatchDecoder::join(const std::vector<std::vector<int32_t>>& prompts,
                                        const SamplingOptions& sampling) {
  Impl& m = *impl_;
  check_sampling(sampling);
  const int64_t free_slots = m.opt.capacity - static_cast<int64_t>(m.rows.size());
  GDN2_CHECK(static_cast<int64_t>(prompts.size()) <= free_slots, ValueError, "batch decoder: ", prompts.size(),
             " sequences do not fit the ", free_slots, " free slots");
  m.resolve();  // the rows may change below
  // Rows one token ahead (a decode fed their pending tokens): the joining ones are fed their first token too.
  const bool ahead = !m.rows.empty() && m.rows[0].fed;
  std::map<size_t, std::vector<size_t>> by_length;
  for (size_t i = 0; i < prompts.size(); ++i) {
    const std::vector<int32_t>& p = prompts[i];
    GDN2_CHECK(!p.empty() && static_cast<int64_t>(p.size()) <= m.opt.max_len, ValueError, "batch decoder: prompt ",
               i, " has ", p.size(), " tokens; 1 to ", m.opt.max_len, " fit a slot");
    for (int32_t t : p)
      GDN2_CHECK(t >= 0 && t < m.V, ValueError, "batch decoder: prompt ", i, " holds token ", t, " outside [0, ", m.V,
                 ")");
    by_length[p.size()].push_back(i);
  }
  std::vector<int64_t> ids(prompts.size());
  std::vector<Sequence> admitted;
  std::vector<std::pair<const InferenceState*, int64_t>> sources;
  std::vector<InferenceState> states;
  states.reserve(by_length.size());
  for (const auto& [len, members] : by_length) {
    const auto n = static_cast<int64_t>(members.size()), T = static_cast<int64_t>(len);
    states.push_back(m.model.new_state(n));
    InferenceState& st = states.back();
    const int64_t piece = m.opt.prefill_chunk > 0 ? m.opt.prefill_chunk : T;
    Tensor logits;
    for (int64_t s = 0; s < T; s += piece) {
      const int64_t k = std::min(piece, T - s);
      std::vector<int32_t> part;
      for (size_t i : members) part.insert(part.end(), prompts[i].begin() + s, prompts[i].begin() + s + k);
      logits = m.model.forward_logits(Tensor::from_vector<int32_t>({n, k}, part), &st, true);
    }
    std::vector<Sequence> group(static_cast<size_t>(n));
    std::vector<Sequence*> seqs;
    for (int64_t r = 0; r < n; ++r) {
      Sequence& q = group[static_cast<size_t>(r)];
      q.id = m.next_id + static_cast<int64_t>(members[static_cast<size_t>(r)]);
      q.length = T;
      q.options = sampling;
      q.rng.seed(sampling.seed);
      seqs.push_back(&q);
    }
    const std::vector<int32_t> first = m.pick(logits.reshape({n, m.V}), Tensor(), seqs);
    std::vector<int32_t> second;
    const bool feed = ahead && T < m.opt.max_len;  // else the rows finish at their first token, before any decode
    if (feed) {
      logits = m.model.forward_logits(Tensor::from_vector<int32_t>({n, 1}, first), &st, true);
      second = m.pick(logits.reshape({n, m.V}), Tensor(), seqs);
    }
    for (int64_t r = 0; r < n; ++r) {
      group[static_cast<size_t>(r)].pending = first[static_cast<size_t>(r)];
      if (feed) {
        group[static_cast<size_t>(r)].fed = true;
        group[static_cast<size_t>(r)].next = second[static_cast<size_t>(r)];
      }
      sources.emplace_back(&st, r);
      admitted.push_back(std::move(group[static_cast<size_t>(r)]));
    }
  }
  for (size_t i = 0; i < admitted.size(); ++i) {
    const int64_t row = static_cast<int64_t>(m.rows.size());
    m.model.load_slot(m.slots, row, *sources[i].first, sources[i].second);
    m.rows.push_back(std::move(admitted[i]));
  }
  for (size_t i = 0; i < prompts.size(); ++i) ids[i] = m.next_id + static_cast<int64_t>(i);
  m.next_id += static_cast<int64_t>(prompts.size());
  return ids;
}

void BatchDecoder::leave(int64_t seq) {
  Impl& m = *impl_;
  for (size_t r = 0; r < m.rows.size(); ++r)
    if (m.rows[r].id == seq) {
      m.remove_row(r);
      return;
    }
  GDN2_THROW(ValueError, "batch decoder: sequence ", seq, " is not active");
}

std::vector<DecodedToken> BatchDecoder::step() {
  Impl& m = *impl_;
  std::vector<DecodedToken> out;
  std::vector<int64_t> done;
  for (Sequence& s : m.rows) {
    s.emitted += 1;
    const auto& stop = s.options.stop_ids;
    const bool finished = s.emitted >= s.options.max_new_tokens || s.length >= m.opt.max_len ||
                          std::find(stop.begin(), stop.end(), s.pending) != stop.end();
    out.push_back({s.id, s.pending, finished});
    if (finished) done.push_back(s.id);
  }
  for (int64_t id : done) leave(id);
  if (!m.rows.empty()) m.decode();
  return out;
}

int64_t BatchDecoder::active() const { return static_cast<int64_t>(impl_->rows.size()); }
int64_t BatchDecoder::capacity() const { return impl_->opt.capacity; }
int64_t BatchDecoder::state_bytes() const { return impl_->slots.bytes(); }
const InferenceState& BatchDecoder::slots() const { return impl_->slots; }
bool BatchDecoder::uses_cuda_graphs() const { return impl_->graph_mode(); }

}  // namespace gdn2
