// Sampling and the prefill/decode generation loop.
#include "gdn2/generate.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>

#include "gdn2/error.h"

namespace gdn2 {

int32_t sample_token(const float* logits, int64_t vocab, const SamplingOptions& o, std::mt19937_64& rng) {
  GDN2_CHECK(vocab > 0, ValueError, "sample_token: empty vocabulary");
  GDN2_CHECK(o.temperature >= 0 && std::isfinite(o.temperature), ValueError, "temperature must be >= 0, got ",
             o.temperature);
  GDN2_CHECK(o.top_p > 0 && o.top_p <= 1, ValueError, "top_p must be in (0, 1], got ", o.top_p);
  GDN2_CHECK(o.top_k >= 0, ValueError, "top_k must be >= 0, got ", o.top_k);
  for (int64_t i = 0; i < vocab; ++i)
    GDN2_CHECK(std::isfinite(logits[i]), ValueError, "the model produced a non-finite logit (", logits[i], ") for token ",
               i);
  if (o.temperature == 0 || o.top_k == 1)
    return static_cast<int32_t>(std::max_element(logits, logits + vocab) - logits);
  std::vector<int32_t> idx(static_cast<size_t>(vocab));
  std::iota(idx.begin(), idx.end(), 0);
  int64_t keep = vocab;
  if (o.top_k > 0 && o.top_k < vocab) {
    keep = o.top_k;
    std::partial_sort(idx.begin(), idx.begin() + keep, idx.end(),
                      [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); });
  } else {
    std::sort(idx.begin(), idx.end(),
              [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); });
  }
  const double mx = logits[idx[0]];
  std::vector<double> p(static_cast<size_t>(keep));
  double sum = 0;
  for (int64_t i = 0; i < keep; ++i) sum += p[i] = std::exp((logits[idx[i]] - mx) / o.temperature);
  if (o.top_p < 1) {  // smallest prefix of the sorted distribution whose mass reaches top_p
    double mass = 0;
    int64_t n = 0;
    while (n < keep) {
      mass += p[n] / sum;
      ++n;
      if (mass >= o.top_p) break;
    }
    keep = n;
    sum = std::accumulate(p.begin(), p.begin() + keep, 0.0);
  }
  std::uniform_real_distribution<double> u(0.0, sum);
  double r = u(rng), acc = 0;
  for (int64_t i = 0; i < keep; ++i) {
    acc += p[i];
    if (r < acc) return idx[i];
  }
  return idx[keep - 1];
}

GenerateResult generate(LanguageModel& model, const std::vector<int32_t>& prompt, const SamplingOptions& o,
                        const std::function<bool(int32_t)>& on_token) {
  GDN2_CHECK(!prompt.empty(), ValueError, "generate: the prompt is empty");
  GDN2_CHECK(o.max_new_tokens >= 0, ValueError, "generate: max_new_tokens must be >= 0");
  const int64_t V = model.config().vocab_size;
  for (int32_t t : prompt) GDN2_CHECK(t >= 0 && t < V, ValueError, "generate: prompt token ", t, " outside [0, ", V, ")");
  using Clock = std::chrono::steady_clock;
  GenerateResult r;
  std::mt19937_64 rng(o.seed);
  InferenceState state = model.new_state(1);
  auto t0 = Clock::now();
  // Prefill: the whole prompt (or chunks of it) in chunk form.
  Tensor logits;
  const int64_t n = static_cast<int64_t>(prompt.size());
  const int64_t piece = o.prefill_chunk > 0 ? o.prefill_chunk : n;
  for (int64_t s = 0; s < n; s += piece) {
    const int64_t len = std::min(piece, n - s);
    const Tensor ids = Tensor::from_vector<int32_t>({1, len}, std::vector<int32_t>(prompt.begin() + s, prompt.begin() + s + len));
    logits = model.forward_logits(ids, &state, true);
  }
  r.prefill_s = std::chrono::duration<double>(Clock::now() - t0).count();
  t0 = Clock::now();
  for (int64_t i = 0; i < o.max_new_tokens; ++i) {
    const Tensor l32 = logits.dtype() == DType::f32 ? logits.cpu() : logits.to(DType::f32).cpu();
    const int32_t next = sample_token(l32.data<float>(), V, o, rng);
    r.tokens.push_back(next);
    const bool go_on = on_token ? on_token(next) : true;
    if (!go_on || std::find(o.stop_ids.begin(), o.stop_ids.end(), next) != o.stop_ids.end()) break;
    if (i + 1 == o.max_new_tokens) break;
    logits = model.forward_logits(Tensor::from_vector<int32_t>({1, 1}, {next}), &state, true);  // recurrent decode
  }
  r.decode_s = std::chrono::duration<double>(Clock::now() - t0).count();
  r.state_bytes = state.bytes();
  return r;
}

}  // namespace gdn2
