// Malformed or unsupported tokenizer.json files raise gdn2::FormatError naming the file and the problem.
#include <gtest/gtest.h>

#include <functional>

#include "../core/temp_dir.h"
#include "gdn2/error.h"
#include "small_tokenizer.h"
#include "tokenizer_test_util.h"

namespace {

using nlohmann::json;

// Expects FormatError from loading `text`, with `needle` in the message (and the label).
void expect_format_error(const std::string& text, const std::string& needle) {
  try {
    gdn2::Tokenizer::from_json(text, "bad.json");
    ADD_FAILURE() << "no error for: " << text.substr(0, 200);
  } catch (const gdn2::FormatError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("bad.json"), std::string::npos) << msg;
    EXPECT_NE(msg.find(needle), std::string::npos) << "'" << needle << "' not in: " << msg;
  }
}

// The small tokenizer with one edit applied.
std::string edited(const std::function<void(json&)>& edit) {
  json j = gdn2_test::small_tokenizer();
  edit(j);
  return j.dump();
}

TEST(TokenizerMalformed, BadJson) {
  expect_format_error("", "not valid JSON");
  expect_format_error("{", "not valid JSON");
  expect_format_error("{\"model\": {\"vocab\": {}, \"merges\": []},}", "not valid JSON");
  expect_format_error("[1, 2]", "top level must be a JSON object");
  expect_format_error(std::string("{\"model\":\x01}"), "not valid JSON");
}

TEST(TokenizerMalformed, MissingOrUnknownModel) {
  expect_format_error("{}", "'model' is missing");
  expect_format_error(edited([](json& j) { j.erase("model"); }), "'model' is missing");
  expect_format_error(edited([](json& j) { j["model"] = 3; }), "model must be an object");
  expect_format_error(edited([](json& j) { j["model"]["type"] = "WordPiece"; }), "model type 'WordPiece'");
  expect_format_error(edited([](json& j) { j["model"]["type"] = "Unigram"; }), "only BPE");
  expect_format_error(edited([](json& j) {
                        j["model"].erase("type");
                        j["model"].erase("merges");
                      }),
                      "no type and no merges");
  expect_format_error(edited([](json& j) { j["model"].erase("vocab"); }), "model.vocab is missing");
  expect_format_error(edited([](json& j) { j["model"]["merges"] = "a b"; }), "model.merges is missing or not an array");
}

TEST(TokenizerMalformed, MergesReferencingUnknownTokens) {
  expect_format_error(edited([](json& j) { j["model"]["merges"].push_back("zz qq"); }), "\"zz\" is not in the vocab");
  expect_format_error(edited([](json& j) { j["model"]["merges"].push_back(json::array({"a", "b"})); }),
                      "\"ab\" is not in the vocab");
  expect_format_error(edited([](json& j) { j["model"]["merges"].push_back("abc"); }), "two tokens separated by one space");
  expect_format_error(edited([](json& j) { j["model"]["merges"].push_back("a b c"); }), "two tokens separated");
  expect_format_error(edited([](json& j) { j["model"]["merges"].push_back(json::array({"a"})); }), "model.merges[12]");
  expect_format_error(edited([](json& j) { j["model"]["merges"].push_back(7); }), "must be \"a b\"");
}

TEST(TokenizerMalformed, IdsOutOfRangeOrNotIntegers) {
  expect_format_error(edited([](json& j) { j["model"]["vocab"]["zzz"] = -1; }), "out of range");
  expect_format_error(edited([](json& j) { j["model"]["vocab"]["zzz"] = 1LL << 40; }), "out of range");
  expect_format_error(edited([](json& j) { j["model"]["vocab"]["zzz"] = 16777216; }), "out of range");
  expect_format_error(edited([](json& j) { j["model"]["vocab"]["zzz"] = 1.5; }), "must be an integer id");
  expect_format_error(edited([](json& j) { j["model"]["vocab"]["zzz"] = "7"; }), "must be an integer id");
  expect_format_error(edited([](json& j) { j["added_tokens"][0]["id"] = -5; }), "out of range");
  expect_format_error(edited([](json& j) { j["added_tokens"][0].erase("id"); }), "added_tokens[0].id is missing");
}

TEST(TokenizerMalformed, DuplicateIds) {
  expect_format_error(edited([](json& j) { j["model"]["vocab"]["zzz"] = 5; }), "id 5 is given to both");
  // An added token that takes a vocab token's id, or an id HF would not give it.
  expect_format_error(edited([](json& j) { j["added_tokens"][1]["id"] = 5; }), "would give it id 269");
  expect_format_error(edited([](json& j) { j["added_tokens"][1]["id"] = 268; }), "would give it id 269");
  expect_format_error(edited([](json& j) { j["added_tokens"][0]["content"] = "a"; }), "would give it id 97");
  expect_format_error(edited([](json& j) {
                        j["added_tokens"].push_back({{"id", 999}, {"content", "<mask>"}, {"special", true}});
                      }),
                      "would give it id 270");
}

TEST(TokenizerMalformed, BadComponentsAndFields) {
  expect_format_error(edited([](json& j) { j["normalizer"] = {{"type", "Lowercase"}}; }), "normalizer type 'Lowercase'");
  expect_format_error(edited([](json& j) { j["normalizer"] = {{"kind", "NFC"}}; }), "normalizer.type is missing");
  expect_format_error(edited([](json& j) { j["pre_tokenizer"] = {{"type", "Whitespace"}}; }), "'Whitespace'");
  expect_format_error(edited([](json& j) {
                        j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "(unclosed"}}},
                                              {"behavior", "Isolated"}, {"invert", false}};
                      }),
                      "does not compile");
  expect_format_error(edited([](json& j) {
                        j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "a"}}}, {"behavior", "Sideways"}};
                      }),
                      "behavior 'Sideways'");
  expect_format_error(edited([](json& j) {
                        j["pre_tokenizer"] = {{"type", "Sequence"},
                                              {"pretokenizers", json::array({{{"type", "ByteLevel"}},
                                                                             {{"type", "ByteLevel"}}})}};
                      }),
                      "after ByteLevel");
  expect_format_error(edited([](json& j) { j["decoder"] = {{"type", "WordPiece"}}; }), "decoder type 'WordPiece'");
  expect_format_error(edited([](json& j) { j["model"]["byte_fallback"] = true; }), "byte_fallback");
  expect_format_error(edited([](json& j) { j["model"]["dropout"] = 0.1; }), "dropout");
  expect_format_error(edited([](json& j) { j["model"]["unk_token"] = "<unk>"; }), "unk_token \"<unk>\" is not in");
  expect_format_error(edited([](json& j) { j["model"]["continuing_subword_prefix"] = "##"; }), "affixes");
  expect_format_error(edited([](json& j) { j["model"]["ignore_merges"] = "yes"; }), "must be true or false");
  expect_format_error(edited([](json& j) { j["added_tokens"] = json::object(); }), "added_tokens must be an array");
  expect_format_error(edited([](json& j) { j["added_tokens"][2]["content"] = ""; }), "content is empty");
  expect_format_error(edited([](json& j) { j["added_tokens"][2]["lstrip"] = 1; }), "must be true or false");
}

TEST(TokenizerMalformed, InvalidUtf8InTheFile) {
  std::string text = gdn2_test::small_tokenizer().dump();
  const size_t at = text.find("<mask>");
  ASSERT_NE(at, std::string::npos);
  text[at + 1] = '\xff';
  expect_format_error(text, "not valid JSON");
}

TEST(TokenizerMalformed, FilesOnDisk) {
  gdn2_test::TempDir dir;
  EXPECT_THROW(gdn2::Tokenizer::from_file(dir.file("missing.json")), gdn2::IoError);
  gdn2_test::write_file(dir.file("trunc.json"), gdn2_test::small_tokenizer().dump().substr(0, 500));
  try {
    gdn2::Tokenizer::from_file(dir.file("trunc.json"));
    ADD_FAILURE() << "truncated file loaded";
  } catch (const gdn2::FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("trunc.json"), std::string::npos) << e.what();
  }
}

TEST(TokenizerMalformed, SupportedVariantsLoad) {
  // Both merge spellings, optional fields absent, Split with a literal pattern and other behaviours.
  EXPECT_NO_THROW(gdn2::Tokenizer::from_json(edited([](json& j) {
    json pairs = json::array();
    for (const auto& m : j["model"]["merges"]) {
      const std::string s = m.get<std::string>();
      pairs.push_back({s.substr(0, s.find(' ')), s.substr(s.find(' ') + 1)});
    }
    j["model"]["merges"] = pairs;
    j["model"].erase("type");
    j.erase("post_processor");
    j.erase("normalizer");
  })));
  for (const char* behavior : {"Removed", "MergedWithPrevious", "MergedWithNext", "Contiguous", "Isolated"}) {
    const gdn2::Tokenizer t = gdn2::Tokenizer::from_json(edited([&](json& j) {
      j["pre_tokenizer"] = {{"type", "Sequence"},
                            {"pretokenizers",
                             json::array({{{"type", "Split"}, {"pattern", {{"String", " "}}}, {"behavior", behavior}},
                                          {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}})}};
    }));
    EXPECT_FALSE(t.encode("hello world").empty()) << behavior;
  }
}

}  // namespace
