// Reading a Hugging Face tokenizer.json into a TokenizerImpl, with a FormatError for every malformed field.
#include <algorithm>
#include <limits>
#include <set>

#include "gdn2/error.h"
#include "tokenizer/byte_unicode.h"
#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/utf8.h"

namespace gdn2::tokenizer_detail {

namespace {

using json = nlohmann::json;

// Context for messages: the file label plus a field path.
struct Ctx {
  const std::string& label;
  [[noreturn]] void fail(const std::string& what) const { GDN2_THROW(FormatError, label, ": ", what); }
};

const json* member(const json& obj, const char* key) {
  auto it = obj.find(key);
  return it == obj.end() ? nullptr : &*it;
}

bool get_bool(const Ctx& c, const json& obj, const char* key, bool dflt, const std::string& where) {
  const json* v = member(obj, key);
  if (v == nullptr || v->is_null()) return dflt;
  if (!v->is_boolean()) c.fail(where + "." + key + " must be true or false, not " + v->dump());
  return v->get<bool>();
}

std::string get_string(const Ctx& c, const json& obj, const char* key, const std::string& where) {
  const json* v = member(obj, key);
  if (v == nullptr) c.fail(where + "." + key + " is missing");
  if (!v->is_string()) c.fail(where + "." + key + " must be a string, not " + v->dump());
  return v->get<std::string>();
}

std::string type_of(const Ctx& c, const json& obj, const std::string& where) {
  if (!obj.is_object()) c.fail(where + " must be an object or null, not " + obj.dump().substr(0, 80));
  return get_string(c, obj, "type", where);
}

int32_t get_id(const Ctx& c, const json& v, const std::string& where) {
  if (!v.is_number_integer()) c.fail(where + " must be an integer id, not " + v.dump().substr(0, 80));
  const int64_t id = v.is_number_unsigned() ? static_cast<int64_t>(std::min<uint64_t>(v.get<uint64_t>(), 1ull << 40))
                                            : v.get<int64_t>();
  if (id < 0 || id >= kMaxVocab)
    c.fail(where + " = " + std::to_string(id) + " is out of range [0, " + std::to_string(kMaxVocab) + ")");
  return static_cast<int32_t>(id);
}

void check_utf8(const Ctx& c, const std::string& s, const std::string& where) {
  if (utf8_invalid_at(s) != kValidUtf8) c.fail(where + " is not valid UTF-8");
}

void load_normalizer(const Ctx& c, const json& n, Normalizer& out, const std::string& where) {
  if (n.is_null()) return;
  const std::string type = type_of(c, n, where);
  if (type == "NFC") {
    out.steps.push_back(NormForm::nfc);
  } else if (type == "NFD") {
    out.steps.push_back(NormForm::nfd);
  } else if (type == "NFKC") {
    out.steps.push_back(NormForm::nfkc);
  } else if (type == "NFKD") {
    out.steps.push_back(NormForm::nfkd);
  } else if (type == "Sequence") {
    const json* list = member(n, "normalizers");
    if (list == nullptr || !list->is_array()) c.fail(where + ".normalizers must be an array");
    for (size_t i = 0; i < list->size(); ++i)
      load_normalizer(c, (*list)[i], out, where + ".normalizers[" + std::to_string(i) + "]");
  } else {
    c.fail(where + ": normalizer type '" + type + "' is not supported (NFC, NFD, NFKC, NFKD, Sequence)");
  }
}

SplitBehavior parse_behavior(const Ctx& c, const std::string& s, const std::string& where) {
  if (s == "Isolated") return SplitBehavior::isolated;
  if (s == "Removed") return SplitBehavior::removed;
  if (s == "MergedWithPrevious") return SplitBehavior::merged_with_previous;
  if (s == "MergedWithNext") return SplitBehavior::merged_with_next;
  if (s == "Contiguous") return SplitBehavior::contiguous;
  c.fail(where + ".behavior '" + s + "' is not one of Isolated, Removed, MergedWithPrevious, MergedWithNext, "
                 "Contiguous");
}

void load_pre_tokenizer(const Ctx& c, const json& p, PreTokenizer& out, const std::string& where) {
  if (p.is_null()) return;
  const std::string type = type_of(c, p, where);
  if (out.byte_level) c.fail(where + ": a pre-tokenizer after ByteLevel is not supported");
  if (type == "Sequence") {
    const json* list = member(p, "pretokenizers");
    if (list == nullptr || !list->is_array()) c.fail(where + ".pretokenizers must be an array");
    for (size_t i = 0; i < list->size(); ++i)
      load_pre_tokenizer(c, (*list)[i], out, where + ".pretokenizers[" + std::to_string(i) + "]");
  } else if (type == "ByteLevel") {
    out.byte_level = true;
    out.add_prefix_space = get_bool(c, p, "add_prefix_space", true, where);
    if (get_bool(c, p, "use_regex", true, where)) out.byte_level_regex = std::make_shared<Regex>(kGpt2Pattern);
  } else if (type == "Split") {
    SplitStep step;
    const json* pat = member(p, "pattern");
    if (pat == nullptr || !pat->is_object() || pat->size() != 1)
      c.fail(where + ".pattern must be {\"Regex\": ...} or {\"String\": ...}");
    if (const json* r = member(*pat, "Regex")) {
      if (!r->is_string()) c.fail(where + ".pattern.Regex must be a string");
      try {
        step.regex = std::make_shared<Regex>(r->get<std::string>());
      } catch (const ValueError& e) {
        c.fail(where + ".pattern.Regex: " + e.what());
      }
    } else if (const json* s = member(*pat, "String")) {
      if (!s->is_string() || s->get<std::string>().empty()) c.fail(where + ".pattern.String must be a non-empty string");
      step.literal = s->get<std::string>();
    } else {
      c.fail(where + ".pattern must be {\"Regex\": ...} or {\"String\": ...}");
    }
    step.behavior = parse_behavior(c, get_string(c, p, "behavior", where), where);
    step.invert = get_bool(c, p, "invert", false, where);
    out.splits.push_back(std::move(step));
  } else {
    c.fail(where + ": pre-tokenizer type '" + type + "' is not supported (ByteLevel, Split, Sequence)");
  }
}

DecoderKind load_decoder(const Ctx& c, const json& d) {
  if (d.is_null()) return DecoderKind::none;
  const std::string type = type_of(c, d, "decoder");
  if (type == "ByteLevel") return DecoderKind::byte_level;
  c.fail("decoder type '" + type + "' is not supported (ByteLevel or null)");
}

void load_model(const Ctx& c, const json& m, BpeModel& model) {
  if (!m.is_object()) c.fail("model must be an object");
  if (const json* t = member(m, "type")) {
    if (!t->is_string()) c.fail("model.type must be a string");
    if (t->get<std::string>() != "BPE")
      c.fail("model type '" + t->get<std::string>() + "' is not supported (only BPE)");
  } else if (member(m, "merges") == nullptr) {
    c.fail("model has no type and no merges: only BPE models are supported");
  }
  const json* vocab = member(m, "vocab");
  if (vocab == nullptr || !vocab->is_object()) c.fail("model.vocab is missing or not an object");
  const json* merges = member(m, "merges");
  if (merges == nullptr || !merges->is_array()) c.fail("model.merges is missing or not an array");
  if (const json* d = member(m, "dropout"); d != nullptr && !d->is_null())
    c.fail("model.dropout must be null (BPE dropout is not supported)");
  if (get_bool(c, m, "byte_fallback", false, "model")) c.fail("model.byte_fallback = true is not supported");
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    const json* v = member(m, key);
    if (v != nullptr && !v->is_null() && !(v->is_string() && v->get<std::string>().empty()))
      c.fail(std::string("model.") + key + " must be null or \"\" (affixes are not supported)");
  }
  model.fuse_unk = get_bool(c, m, "fuse_unk", false, "model");
  model.ignore_merges = get_bool(c, m, "ignore_merges", false, "model");

  model.vocab.reserve(vocab->size());
  model.vocab_in_order.reserve(vocab->size());
  std::unordered_map<int32_t, const std::string*> by_id;
  by_id.reserve(vocab->size());
  for (auto it = vocab->begin(); it != vocab->end(); ++it) {
    const int32_t id = get_id(c, it.value(), "model.vocab[" + json(it.key()).dump() + "]");
    auto [pos, fresh] = by_id.emplace(id, &it.key());
    if (!fresh)
      c.fail("model.vocab: id " + std::to_string(id) + " is given to both " + json(*pos->second).dump() + " and " +
             json(it.key()).dump());
    model.vocab.emplace(it.key(), id);
    model.vocab_in_order.emplace_back(it.key(), id);
  }
  std::sort(model.vocab_in_order.begin(), model.vocab_in_order.end(),
            [](const auto& a, const auto& b) { return a.second < b.second; });

  if (const json* u = member(m, "unk_token"); u != nullptr && !u->is_null()) {
    if (!u->is_string()) c.fail("model.unk_token must be a string or null");
    auto it = model.vocab.find(u->get<std::string>());
    if (it == model.vocab.end()) c.fail("model.unk_token " + u->dump() + " is not in the vocab");
    model.unk = it->second;
  }

  auto lookup = [&](const std::string& tok, size_t k, const std::string& whole) {
    auto it = model.vocab.find(tok);
    if (it == model.vocab.end())
      c.fail("model.merges[" + std::to_string(k) + "] " + json(whole).dump() + ": token " + json(tok).dump() +
             " is not in the vocab");
    return it->second;
  };
  model.merges.reserve(merges->size());
  std::vector<Merge> listed;
  listed.reserve(merges->size());
  std::string a, b;
  for (size_t k = 0; k < merges->size(); ++k) {
    const json& e = (*merges)[k];
    if (e.is_string()) {
      const std::string& s = e.get_ref<const std::string&>();
      const size_t sp = s.find(' ');
      if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos)
        c.fail("model.merges[" + std::to_string(k) + "] " + e.dump() + " is not two tokens separated by one space");
      a.assign(s, 0, sp);
      b.assign(s, sp + 1);
    } else if (e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string()) {
      a = e[0].get<std::string>();
      b = e[1].get<std::string>();
    } else {
      c.fail("model.merges[" + std::to_string(k) + "] must be \"a b\" or [\"a\", \"b\"], not " + e.dump().substr(0, 80));
    }
    const std::string whole = a + " " + b;
    const int32_t ia = lookup(a, k, whole), ib = lookup(b, k, whole), ic = lookup(a + b, k, whole);
    model.merges.insert(ia, ib, MergeValue{static_cast<int32_t>(k), ic});
    listed.push_back({ia, ib, static_cast<int32_t>(k)});
  }
  // The effective merges (a later duplicate wins), in rank order.
  std::vector<Merge> ranked;
  ranked.reserve(listed.size());
  for (const Merge& m : listed)
    if (model.merges.find(m.left, m.right)->rank == m.rank) ranked.push_back(m);
  model.merge_list = std::move(ranked);
}

void load_added(const Ctx& c, const json& list, std::vector<AddedToken>& out) {
  if (list.is_null()) return;
  if (!list.is_array()) c.fail("added_tokens must be an array");
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string where = "added_tokens[" + std::to_string(i) + "]";
    const json& t = list[i];
    if (!t.is_object()) c.fail(where + " must be an object");
    AddedToken a;
    const json* id = member(t, "id");
    if (id == nullptr) c.fail(where + ".id is missing");
    a.id = get_id(c, *id, where + ".id");
    a.content = get_string(c, t, "content", where);
    if (a.content.empty()) c.fail(where + ".content is empty");
    a.special = get_bool(c, t, "special", false, where);
    a.normalized = get_bool(c, t, "normalized", !a.special, where);
    a.lstrip = get_bool(c, t, "lstrip", false, where);
    a.rstrip = get_bool(c, t, "rstrip", false, where);
    a.single_word = get_bool(c, t, "single_word", false, where);
    out.push_back(std::move(a));
  }
}

}  // namespace

std::shared_ptr<TokenizerImpl> load_tokenizer(const json& root, const std::string& label) {
  const Ctx c{label};
  if (!root.is_object()) c.fail("the top level must be a JSON object");
  auto impl = std::make_shared<TokenizerImpl>();
  impl->label = label;
  const json* model = member(root, "model");
  if (model == nullptr || model->is_null()) c.fail("'model' is missing");
  load_model(c, *model, impl->model);

  static const json null_json;
  auto part = [&](const char* key) -> const json& {
    const json* v = member(root, key);
    return v == nullptr ? null_json : *v;
  };
  impl->normalizer_json = part("normalizer");
  impl->pre_tokenizer_json = part("pre_tokenizer");
  impl->post_processor_json = part("post_processor");
  impl->decoder_json = part("decoder");
  load_normalizer(c, impl->normalizer_json, impl->normalizer, "normalizer");
  load_pre_tokenizer(c, impl->pre_tokenizer_json, impl->pre_tokenizer, "pre_tokenizer");
  impl->decoder = load_decoder(c, impl->decoder_json);
  if (!impl->post_processor_json.is_null() && !impl->post_processor_json.is_object())
    c.fail("post_processor must be an object or null");
  load_added(c, part("added_tokens"), impl->added);
  impl->finish();
  return impl;
}

void TokenizerImpl::finish() {
  const Ctx c{label};
  model.byte_level = pre_tokenizer.byte_level;

  // Added tokens: each must carry the id HF tokenizers gives it when it loads the file (AddedVocabulary::add_tokens):
  // the vocab's id if the content is a vocab token, the id of an earlier entry with the same content, else the next
  // id after the added ones (or the vocab's entry count, if no added id reaches it).
  std::vector<AddedToken> kept;
  const auto vocab_count = static_cast<int64_t>(model.vocab.size());
  int64_t max_added = -1;
  for (const AddedToken& a : added) {
    int64_t expect;
    if (auto it = model.vocab.find(a.content); it != model.vocab.end()) {
      expect = it->second;
    } else if (auto it2 = added_by_content.find(a.content); it2 != added_by_content.end()) {
      expect = it2->second;
    } else {
      expect = (max_added >= 0 && (max_added >= vocab_count || vocab_count == 0)) ? max_added + 1 : vocab_count;
    }
    if (a.id != expect)
      c.fail("added token " + nlohmann::json(a.content).dump() + " has id " + std::to_string(a.id) +
             " but HF tokenizers would give it id " + std::to_string(expect) +
             " (the vocab's id for a vocab token, else the next id after the vocab and the earlier added tokens)");
    max_added = std::max<int64_t>(max_added, a.id);
    if (added_by_content.count(a.content)) {
      for (AddedToken& k : kept)
        if (k.content == a.content) k = a;  // a later entry with the same content updates the flags
      continue;
    }
    added_by_content.emplace(a.content, a.id);
    kept.push_back(a);
  }
  added = std::move(kept);

  int64_t size = 0;
  for (const auto& [tok, id] : model.vocab_in_order) size = std::max<int64_t>(size, id + 1);
  for (const AddedToken& a : added) size = std::max<int64_t>(size, a.id + 1);
  id_token.assign(size, std::string());
  id_bytes.assign(size, std::string());
  id_kind.assign(size, kNone);
  for (const auto& [tok, id] : model.vocab_in_order) {
    id_token[id] = tok;
    id_kind[id] = kVocab;
  }
  for (const AddedToken& a : added) {
    if (id_kind[a.id] == kVocab && id_token[a.id] != a.content)
      c.fail("added token " + nlohmann::json(a.content).dump() + " has id " + std::to_string(a.id) +
             ", which the vocab gives to " + nlohmann::json(id_token[a.id]).dump());
    if (id_kind[a.id] >= kAdded)
      c.fail("added tokens " + nlohmann::json(id_token[a.id]).dump() + " and " + nlohmann::json(a.content).dump() +
             " share id " + std::to_string(a.id));
    id_token[a.id] = a.content;
    id_kind[a.id] = a.special ? kSpecial : kAdded;
  }
  for (int64_t id = 0; id < size; ++id) {
    if (id_kind[id] == kNone) continue;
    check_utf8(c, id_token[id], "token " + std::to_string(id));
    if (decoder == DecoderKind::byte_level) {
      if (!vocab_form_to_bytes(id_token[id], id_bytes[id])) id_bytes[id] = id_token[id];
    } else {
      id_bytes[id] = id_token[id];
    }
  }

  if (model.byte_level) {
    for (int b = 0; b < 256; ++b) {
      auto it = model.vocab.find(byte_char_utf8(static_cast<unsigned char>(b)));
      model.byte_ids[b] = it == model.vocab.end() ? -1 : it->second;
    }
    if (model.ignore_merges) {
      std::string raw;
      for (const auto& [tok, id] : model.vocab_in_order)
        if (vocab_form_to_bytes(tok, raw)) model.raw_vocab.emplace(raw, id);
    }
  }

  std::vector<std::string> raw_pat, norm_pat;
  std::vector<int32_t> raw_idx, norm_idx;
  // HF lists special tokens before the others when building its matchers.
  for (int pass = 0; pass < 2; ++pass) {
    for (size_t k = 0; k < added.size(); ++k) {
      const AddedToken& a = added[k];
      if (a.special != (pass == 0)) continue;
      if (a.normalized) {
        norm_pat.push_back(normalizer.apply(a.content));
        norm_idx.push_back(static_cast<int32_t>(k));
      } else {
        raw_pat.push_back(a.content);
        raw_idx.push_back(static_cast<int32_t>(k));
      }
    }
  }
  raw_matcher.build(raw_pat, raw_idx);
  normalized_matcher.build(norm_pat, norm_idx);
}

}  // namespace gdn2::tokenizer_detail
