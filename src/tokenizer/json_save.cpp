// Writing a TokenizerImpl back as a Hugging Face tokenizer.json (vocab by id, merges in rank order).
#include <algorithm>

#include "tokenizer/tokenizer_impl.h"

namespace gdn2::tokenizer_detail {

namespace {

std::string quoted(const std::string& s) { return nlohmann::json(s).dump(); }

}  // namespace

std::string TokenizerImpl::to_json_text() const {
  using json = nlohmann::ordered_json;
  std::string out;
  out.reserve(model.vocab_in_order.size() * 40 + 4096);
  out += "{\"version\":\"1.0\",\"truncation\":null,\"padding\":null,\"added_tokens\":[";
  std::vector<const AddedToken*> sorted;
  for (const AddedToken& a : added) sorted.push_back(&a);
  std::sort(sorted.begin(), sorted.end(), [](const AddedToken* x, const AddedToken* y) { return x->id < y->id; });
  for (size_t i = 0; i < sorted.size(); ++i) {
    const AddedToken& a = *sorted[i];
    json t;
    t["id"] = a.id;
    t["content"] = a.content;
    t["single_word"] = a.single_word;
    t["lstrip"] = a.lstrip;
    t["rstrip"] = a.rstrip;
    t["normalized"] = a.normalized;
    t["special"] = a.special;
    if (i) out += ',';
    out += t.dump();
  }
  out += "],\"normalizer\":" + normalizer_json.dump();
  out += ",\"pre_tokenizer\":" + pre_tokenizer_json.dump();
  out += ",\"post_processor\":" + post_processor_json.dump();
  out += ",\"decoder\":" + decoder_json.dump();
  out += ",\"model\":{\"type\":\"BPE\",\"dropout\":null,\"unk_token\":";
  out += model.unk >= 0 ? quoted(id_token[model.unk]) : std::string("null");
  out += ",\"continuing_subword_prefix\":null,\"end_of_word_suffix\":null,\"fuse_unk\":";
  out += model.fuse_unk ? "true" : "false";
  out += ",\"byte_fallback\":false,\"ignore_merges\":";
  out += model.ignore_merges ? "true" : "false";
  out += ",\"vocab\":{";
  for (size_t i = 0; i < model.vocab_in_order.size(); ++i) {
    if (i) out += ',';
    out += quoted(model.vocab_in_order[i].first);
    out += ':';
    out += std::to_string(model.vocab_in_order[i].second);
  }
  // Merges as "a b" (readable by every HF version) unless a token holds a space; then as [a, b] pairs.
  bool has_space = false;
  for (const Merge& m : model.merge_list)
    if (id_token[m.left].find(' ') != std::string::npos || id_token[m.right].find(' ') != std::string::npos)
      has_space = true;
  out += "},\"merges\":[";
  for (size_t i = 0; i < model.merge_list.size(); ++i) {
    const Merge& m = model.merge_list[i];
    if (i) out += ',';
    if (has_space) {
      out += '[' + quoted(id_token[m.left]) + ',' + quoted(id_token[m.right]) + ']';
    } else {
      out += quoted(id_token[m.left] + " " + id_token[m.right]);
    }
  }
  out += "]}}\n";
  return out;
}

}  // namespace gdn2::tokenizer_detail
