// `gdn2 generate`: load a model directory and a tokenizer, prefill the prompt, decode and stream text; or many prompts
// from a file through the batch decoder.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <string>

#include "gdn2/backend.h"
#include "gdn2/batch_decoder.h"
#include "gdn2/generate.h"
#include "gdn2/model/checkpoint.h"
#include "gdn2/tokenizer.h"
#include "tools/cli.h"

namespace gdn2::cli {

namespace {

// Emits only complete UTF-8 characters of a byte stream; the rest waits for the next bytes.
class Utf8Stream {
 public:
  void push(const std::string& bytes, std::FILE* out) {
    pending_ += bytes;
    size_t n = complete_prefix(pending_);
    std::fwrite(pending_.data(), 1, n, out);
    std::fflush(out);
    pending_.erase(0, n);
  }
  void finish(std::FILE* out) {
    std::fwrite(pending_.data(), 1, pending_.size(), out);
    pending_.clear();
  }

 private:
  static size_t complete_prefix(const std::string& s) {
    size_t i = s.size();
    for (size_t back = 0; back < 4 && i > 0; ++back) {  // look at the last few bytes for an unfinished sequence
      const unsigned char c = static_cast<unsigned char>(s[i - 1]);
      if ((c & 0xC0) == 0x80) {
        --i;
        continue;
      }
      const size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
      return s.size() - (i - 1) >= need ? s.size() : i - 1;
    }
    return s.size();
  }
  std::string pending_;
};

struct GenerateArgs {
  std::string model, tokenizer, prompt = "The", prompts_file;
  int64_t capacity = 16;
  SamplingOptions sampling;
  int threads = 0;
  bool greedy = false;
  std::string backend = "cpu", state_dtype = "f32";
};

}  // namespace

int run_generate(const std::string& model_dir, const std::string& tokenizer_path, const std::string& prompt,
                 const SamplingOptions& so, Device device) {
  auto model = model_load(model_dir, DType::f32, device);
  const Tokenizer tok = Tokenizer::from_file(tokenizer_path);
  GDN2_CHECK(tok.vocab_size() <= model->config().vocab_size, ValueError, "the tokenizer has ", tok.vocab_size(),
             " tokens, the model only ", model->config().vocab_size);
  std::vector<int32_t> ids = tok.encode(prompt);
  GDN2_CHECK(!ids.empty(), ValueError, "the prompt encodes to no tokens");
  SamplingOptions o = so;
  if (tok.eos_id()) o.stop_ids.push_back(*tok.eos_id());
  std::fputs(prompt.c_str(), stdout);
  Utf8Stream stream;
  const GenerateResult r = generate(*model, ids, o, [&](int32_t id) {
    if (!tok.is_special(id)) stream.push(tok.token_bytes(id), stdout);
    return true;
  });
  stream.finish(stdout);
  std::printf("\n");
  const double n = static_cast<double>(r.tokens.size());
  std::fprintf(stderr, "[prefill %zu tokens in %.1f ms; decode %zu tokens in %.2f s (%.1f tok/s); state %.1f KB]\n",
               ids.size(), r.prefill_s * 1e3, r.tokens.size(), r.decode_s, n > 1 ? (n - 1) / r.decode_s : 0.0,
               static_cast<double>(r.state_bytes) / 1024.0);
  return 0;
}

// Many prompts (one per line of a file) through the batch decoder: they share the decode steps (continuous batching,
// CUDA graphs on the GPU); each completion is printed when its sequence finishes, tagged with its line number.
int run_generate_batch(const std::string& model_dir, const std::string& tokenizer_path, const std::string& path,
                       const SamplingOptions& so, int64_t capacity, Device device, DType state_dtype) {
  std::ifstream in(path);
  GDN2_CHECK(in.good(), IoError, "cannot read the prompts file ", path);
  std::vector<std::string> texts;
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) texts.push_back(line);
  GDN2_CHECK(!texts.empty(), ValueError, "the prompts file ", path, " holds no prompt");
  auto model = model_load(model_dir, DType::f32, device);
  const Tokenizer tok = Tokenizer::from_file(tokenizer_path);
  GDN2_CHECK(tok.vocab_size() <= model->config().vocab_size, ValueError, "the tokenizer has ", tok.vocab_size(),
             " tokens, the model only ", model->config().vocab_size);
  std::vector<std::vector<int32_t>> prompts;
  int64_t longest = 0;
  for (size_t i = 0; i < texts.size(); ++i) {
    prompts.push_back(tok.encode(texts[i]));
    GDN2_CHECK(!prompts.back().empty(), ValueError, "prompt ", i + 1, " encodes to no tokens");
    longest = std::max<int64_t>(longest, static_cast<int64_t>(prompts.back().size()));
  }
  SamplingOptions o = so;
  if (tok.eos_id()) o.stop_ids.push_back(*tok.eos_id());
  BatchDecoderOptions bo;
  bo.capacity = std::min<int64_t>(capacity, static_cast<int64_t>(prompts.size()));
  bo.max_len = longest + o.max_new_tokens;
  bo.prefill_chunk = o.prefill_chunk;
  bo.state_dtype = state_dtype;
  const auto t0 = std::chrono::steady_clock::now();
  BatchDecoder dec(*model, bo);
  std::map<int64_t, size_t> line_of;  // sequence id -> prompt index
  std::map<int64_t, std::vector<int32_t>> out;
  size_t next = 0;
  int64_t tokens = 0;
  while (next < prompts.size() || dec.active() > 0) {
    const auto free_slots = static_cast<size_t>(dec.capacity() - dec.active());
    if (free_slots > 0 && next < prompts.size()) {  // waiting prompts join as slots free up
      const size_t n = std::min(free_slots, prompts.size() - next);
      const std::vector<int64_t> ids =
          dec.join(std::vector<std::vector<int32_t>>(prompts.begin() + next, prompts.begin() + next + n), o);
      for (size_t i = 0; i < n; ++i) line_of[ids[i]] = next + i;
      next += n;
    }
    for (const DecodedToken& t : dec.step()) {
      ++tokens;
      out[t.seq].push_back(t.token);
      if (!t.finished) continue;
      std::string text;
      for (int32_t id : out[t.seq])
        if (!tok.is_special(id)) text += tok.token_bytes(id);
      std::printf("[%zu] %s%s\n", line_of[t.seq] + 1, texts[line_of[t.seq]].c_str(), text.c_str());
      std::fflush(stdout);
      out.erase(t.seq);
    }
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::fprintf(stderr, "[%zu prompts, %ld tokens in %.2f s (%.1f tok/s), %ld slots of %ld tokens: state %.1f MB%s]\n",
               prompts.size(), static_cast<long>(tokens), s, static_cast<double>(tokens) / s,
               static_cast<long>(bo.capacity), static_cast<long>(bo.max_len),
               static_cast<double>(dec.state_bytes()) / 1e6, dec.uses_cuda_graphs() ? ", CUDA graphs" : "");
  return 0;
}

void add_generate_command(CLI::App& app, Context& ctx) {
  auto a = std::make_shared<GenerateArgs>();
  CLI::App* cmd = app.add_subcommand("generate", "generate text from a trained model (CPU, or the GPU with --backend cuda)");
  cmd->add_option("--model", a->model, "model directory (config.json + model.safetensors)")
      ->required()
      ->check(CLI::ExistingDirectory);
  cmd->add_option("--tokenizer", a->tokenizer, "tokenizer.json (default: MODEL/tokenizer.json)");
  cmd->add_option("--prompt", a->prompt, "prompt text");
  cmd->add_option("--prompts-file", a->prompts_file,
                  "many prompts, one per line, generated together (continuous batching); completions printed as they "
                  "finish")
      ->check(CLI::ExistingFile);
  cmd->add_option("--capacity", a->capacity, "with --prompts-file: sequences decoded together at most")
      ->check(CLI::Range(1, 4096));
  cmd->add_option("--state-dtype", a->state_dtype,
                  "with --prompts-file: the recurrent states' dtype in the decode slots (f32, or bf16 on the GPU)")
      ->check(CLI::IsMember({"f32", "bf16"}));
  cmd->add_option("-n,--max-tokens", a->sampling.max_new_tokens, "tokens to generate")->check(CLI::Range(0, 1 << 20));
  cmd->add_option("--temperature", a->sampling.temperature, "sampling temperature (0: greedy)")->check(CLI::Range(0.0, 100.0));
  cmd->add_option("--top-k", a->sampling.top_k, "keep the k most likely tokens (0: all)")->check(CLI::Range(0, 1 << 24));
  cmd->add_option("--top-p", a->sampling.top_p, "nucleus sampling mass")->check(CLI::Range(1e-6, 1.0));
  cmd->add_option("--seed", a->sampling.seed, "sampling seed");
  cmd->add_option("--prefill-chunk", a->sampling.prefill_chunk, "feed the prompt in pieces of this many tokens");
  cmd->add_flag("--greedy", a->greedy, "argmax decoding (same as --temperature 0)");
  cmd->add_option("--threads", a->threads, "CPU threads (0: all)")->check(CLI::Range(0, 4096));
  cmd->add_option("--backend", a->backend, "cpu, or cuda (BF16 on the GPU)")->check(CLI::IsMember({"cpu", "cuda"}));
  cmd->callback([a, &ctx] {
    set_cpu_threads(a->threads);
    if (a->greedy) a->sampling.temperature = 0;
    const std::string tok = a->tokenizer.empty() ? a->model + "/tokenizer.json" : a->tokenizer;
    const Backend backend = backend_from_name(a->backend);
    backend_require(backend);
    const Device device = backend == Backend::cuda ? Device::cuda : Device::cpu;
    ctx.exit_code = a->prompts_file.empty()
                        ? run_generate(a->model, tok, a->prompt, a->sampling, device)
                        : run_generate_batch(a->model, tok, a->prompts_file, a->sampling, a->capacity, device,
                                             a->state_dtype == "bf16" ? DType::bf16 : DType::f32);
  });
}

}  // namespace gdn2::cli
