// `gdn2 generate`: load a model directory and a tokenizer, prefill the prompt, decode and stream text.
#include <cstdio>
#include <string>

#include "gdn2/backend.h"
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
  std::string model, tokenizer, prompt = "The";
  SamplingOptions sampling;
  int threads = 0;
  bool greedy = false;
  std::string backend = "cpu";
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

void add_generate_command(CLI::App& app, Context& ctx) {
  auto a = std::make_shared<GenerateArgs>();
  CLI::App* cmd = app.add_subcommand("generate", "generate text from a trained model (CPU, or the GPU with --backend cuda)");
  cmd->add_option("--model", a->model, "model directory (config.json + model.safetensors)")
      ->required()
      ->check(CLI::ExistingDirectory);
  cmd->add_option("--tokenizer", a->tokenizer, "tokenizer.json (default: MODEL/tokenizer.json)");
  cmd->add_option("--prompt", a->prompt, "prompt text");
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
    ctx.exit_code = run_generate(a->model, tok, a->prompt, a->sampling,
                                 backend == Backend::cuda ? Device::cuda : Device::cpu);
  });
}

}  // namespace gdn2::cli
