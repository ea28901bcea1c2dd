// data_prepare: tokenizes documents in parallel through a caller's encoder and writes train and held-out shards.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace gdn2 {

// Text -> token ids. Called concurrently from several OpenMP threads: it must be thread-safe (a const
// gdn2::Tokenizer::encode is). It must not return eos_id: data_prepare adds it after each document.
using EncodeFn = std::function<std::vector<int32_t>(std::string_view)>;

struct PrepareOptions {
  uint32_t vocab_size = 0;  // ids must lie in [0, vocab_size); 1 .. 2^31-1
  uint32_t eos_id = 0;      // < vocab_size; ends every document
  // Held-out split: document i (0-based, in the order given) goes to val.bin when i % val_every == val_every - 1
  // (every val_every-th document, 2% by default); 0 holds out nothing (val.bin is then empty).
  int64_t val_every = 50;
  // A train shard is closed before the document that would take it past this many tokens (a longer document
  // gets a shard of its own); documents are never split. >= 1.
  int64_t shard_tokens = int64_t{1} << 26;
  int threads = 0;  // OpenMP threads for encoding (0: the default)
};

struct PrepareStats {
  int64_t documents = 0, train_documents = 0, val_documents = 0;
  int64_t train_tokens = 0, val_tokens = 0;  // eos included
  std::vector<std::string> files;            // written, in order: train_000.bin ..., then val.bin
};

// Encodes `documents` (in parallel, in blocks so memory stays bounded) and writes out_dir/train_NNN.bin and
// out_dir/val.bin (created if missing). Output is the same for any thread count. Each file is written atomically;
// val.bin, written last, marks a finished run: data_prepare first removes val.bin and any train_*.bin left in
// out_dir, so a run killed part-way leaves no val.bin and TokenDataset::open refuses the directory.
// ValueError for bad options, an id outside [0, vocab_size) or eos_id inside a document (naming the document);
// an exception thrown by `encode` is rethrown unchanged. IoError when out_dir cannot be created or written.
PrepareStats data_prepare(const std::vector<std::string>& documents, const EncodeFn& encode,
                          const std::string& out_dir, const PrepareOptions& options);

// The byte-level encoder for tests and smoke runs: byte b -> id b (vocab 256 + 1, eos 256).
std::vector<int32_t> byte_encode(std::string_view text);
inline constexpr uint32_t kByteVocabSize = 257;
inline constexpr uint32_t kByteEosId = 256;

}  // namespace gdn2
