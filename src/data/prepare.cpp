// data_prepare: parallel encoding in ordered blocks, train shards by size, the held-out shard last.
#include "gdn2/data/prepare.h"

#include <omp.h>

#include <algorithm>
#include <exception>
#include <filesystem>

#include "gdn2/data/dataset.h"
#include "gdn2/data/shard.h"
#include "gdn2/error.h"

namespace gdn2 {

std::vector<int32_t> byte_encode(std::string_view text) {
  std::vector<int32_t> ids(text.size());
  for (size_t i = 0; i < text.size(); ++i) ids[i] = static_cast<unsigned char>(text[i]);
  return ids;
}

namespace {

constexpr int64_t kBlockDocuments = 1024;  // documents encoded per parallel block: bounds the memory held

void check_options(const PrepareOptions& o) {
  shard_token_bytes(o.vocab_size);  // throws ValueError out of range
  GDN2_CHECK(o.eos_id < o.vocab_size, ValueError, "data_prepare: eos_id ", o.eos_id, " >= vocab_size ", o.vocab_size);
  GDN2_CHECK(o.val_every >= 0, ValueError, "data_prepare: val_every ", o.val_every, " is negative");
  GDN2_CHECK(o.shard_tokens >= 1, ValueError, "data_prepare: shard_tokens ", o.shard_tokens, " must be >= 1");
  GDN2_CHECK(o.threads >= 0, ValueError, "data_prepare: threads ", o.threads, " is negative");
}

void check_ids(const std::vector<int32_t>& ids, int64_t doc, const PrepareOptions& o) {
  for (size_t i = 0; i < ids.size(); ++i) {
    const int32_t t = ids[i];
    GDN2_CHECK(t >= 0 && static_cast<uint32_t>(t) < o.vocab_size, ValueError, "data_prepare: document ", doc,
               ": token ", i, " is ", t, ", outside [0, ", o.vocab_size, ")");
    GDN2_CHECK(static_cast<uint32_t>(t) != o.eos_id, ValueError, "data_prepare: document ", doc, ": token ", i,
               " is eos_id ", o.eos_id, " (the encoder must not emit it; data_prepare ends each document with it)");
  }
}

// Removes val.bin first (the marker of a finished run), then any train_*.bin.
void clear_outputs(const std::filesystem::path& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::remove(dir / std::string(kValShardName), ec);
  GDN2_CHECK(!ec, IoError, "data_prepare: cannot remove ", (dir / std::string(kValShardName)).string(), ": ",
             ec.message());
  std::vector<fs::path> old;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string n = e.path().filename().string();
    if (n.rfind("train_", 0) == 0 && n.size() > 10 && n.substr(n.size() - 4) == ".bin") old.push_back(e.path());
  }
  GDN2_CHECK(!ec, IoError, "data_prepare: cannot list ", dir.string(), ": ", ec.message());
  for (const fs::path& p : old) {
    fs::remove(p, ec);
    GDN2_CHECK(!ec, IoError, "data_prepare: cannot remove ", p.string(), ": ", ec.message());
  }
}

}  // namespace

PrepareStats data_prepare(const std::vector<std::string>& documents, const EncodeFn& encode,
                          const std::string& out_dir, const PrepareOptions& o) {
  namespace fs = std::filesystem;
  check_options(o);
  GDN2_CHECK(static_cast<bool>(encode), ValueError, "data_prepare: no encoder");
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  GDN2_CHECK(!ec && fs::is_directory(out_dir), IoError, "data_prepare: cannot create '", out_dir, "': ", ec.message());
  const fs::path dir(out_dir);
  clear_outputs(dir);

  PrepareStats st;
  std::vector<int32_t> train, val;
  auto flush_train = [&] {
    const std::string path = (dir / train_shard_name(static_cast<int64_t>(st.files.size()))).string();
    shard_write(path, train, o.vocab_size, o.eos_id);
    st.files.push_back(path);
    train.clear();
  };
  const int64_t n = static_cast<int64_t>(documents.size());
  const int threads = o.threads > 0 ? o.threads : omp_get_max_threads();
  std::vector<std::vector<int32_t>> encoded(static_cast<size_t>(std::min(n, kBlockDocuments)));
  for (int64_t block = 0; block < n; block += kBlockDocuments) {
    const int64_t m = std::min(kBlockDocuments, n - block);
    std::exception_ptr error;
    int64_t error_doc = n;
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
    for (int64_t j = 0; j < m; ++j) {
      try {
        encoded[j] = encode(documents[static_cast<size_t>(block + j)]);
        check_ids(encoded[j], block + j, o);
      } catch (...) {
#pragma omp critical(gdn2_data_prepare_error)
        if (block + j < error_doc) {  // report the first failing document, whatever the thread count
          error_doc = block + j;
          error = std::current_exception();
        }
      }
    }
    if (error) std::rethrow_exception(error);
    for (int64_t j = 0; j < m; ++j) {
      const int64_t doc = block + j;
      std::vector<int32_t>& ids = encoded[static_cast<size_t>(j)];
      const bool held_out = o.val_every > 0 && doc % o.val_every == o.val_every - 1;
      const int64_t len = static_cast<int64_t>(ids.size()) + 1;
      if (held_out) {
        val.insert(val.end(), ids.begin(), ids.end());
        val.push_back(static_cast<int32_t>(o.eos_id));
        st.val_documents += 1;
        st.val_tokens += len;
      } else {
        if (!train.empty() && static_cast<int64_t>(train.size()) + len > o.shard_tokens) flush_train();
        train.insert(train.end(), ids.begin(), ids.end());
        train.push_back(static_cast<int32_t>(o.eos_id));
        st.train_documents += 1;
        st.train_tokens += len;
      }
      std::vector<int32_t>().swap(ids);
    }
  }
  if (!train.empty() || st.files.empty()) flush_train();  // always at least one train shard, maybe empty
  const std::string val_path = (dir / std::string(kValShardName)).string();
  shard_write(val_path, val, o.vocab_size, o.eos_id);
  st.files.push_back(val_path);
  st.documents = n;
  return st;
}

}  // namespace gdn2
