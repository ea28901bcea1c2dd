// Tests of the safetensors reader and writer: round trips, the golden file, every malformed-file rule, mutation fuzz.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <random>

#include "gdn2/safetensors.h"
#include "temp_dir.h"

namespace {

using gdn2::DType;
using gdn2::SafetensorsFile;
using gdn2::Tensor;

const DType kAllDTypes[] = {DType::f64, DType::f32, DType::f16, DType::bf16, DType::i64,
                            DType::i32, DType::i16, DType::i8,  DType::u8,   DType::boolean};

// A tensor whose bytes are deterministic noise (every bit pattern, NaNs included, must survive a round trip).
Tensor noise_tensor(const gdn2::Shape& shape, DType dt, uint32_t seed) {
  Tensor t = Tensor::empty(shape, dt);
  std::mt19937 rng(seed);
  auto* p = static_cast<uint8_t*>(t.raw_mut());
  for (size_t i = 0; i < t.nbytes(); ++i) p[i] = static_cast<uint8_t>(rng());
  if (dt == DType::boolean)
    for (size_t i = 0; i < t.nbytes(); ++i) p[i] &= 1u;
  return t;
}

bool same_bytes(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() && a.nbytes() == b.nbytes() &&
         (a.nbytes() == 0 || std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0);
}

// A file image: 8-byte little-endian header length, the header text, then the data.
std::string image(const std::string& header, const std::string& data = "") {
  std::string out(8, '\0');
  const uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[static_cast<size_t>(i)] = static_cast<char>((n >> (8 * i)) & 0xffu);
  return out + header + data;
}

// Expects FormatError whose message names the label and contains `needle`.
void expect_format_error(const std::string& bytes, const std::string& needle) {
  try {
    SafetensorsFile::from_bytes(bytes, "bad.safetensors");
    ADD_FAILURE() << "accepted; expected a FormatError about: " << needle;
  } catch (const gdn2::FormatError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("bad.safetensors"), std::string::npos) << what;
    EXPECT_NE(what.find(needle), std::string::npos) << "wanted \"" << needle << "\" in: " << what;
  }
}

const std::string kF32Entry = R"({"dtype":"F32","shape":[2],"data_offsets":[0,8]})";

TEST(SafetensorsRoundTrip, EveryDTypeThroughAFile) {
  gdn2_test::TempDir dir;
  std::vector<std::pair<std::string, Tensor>> tensors;
  uint32_t seed = 1;
  for (DType dt : kAllDTypes) {
    const std::string n(gdn2::dtype_name(dt));
    tensors.emplace_back("t." + n, noise_tensor({3, 5}, dt, seed++));
    tensors.emplace_back("odd." + n, noise_tensor({7}, dt, seed++));  // odd byte counts misalign what follows
    tensors.emplace_back("scalar." + n, noise_tensor({}, dt, seed++));
    tensors.emplace_back("empty." + n, Tensor::empty({0, 4}, dt));
  }
  const std::string path = dir.file("all.safetensors");
  gdn2::safetensors_write(path, tensors);
  const SafetensorsFile f = SafetensorsFile::open(path);
  EXPECT_EQ(f.path(), path);
  ASSERT_EQ(f.size(), tensors.size());
  EXPECT_TRUE(f.metadata().empty());
  for (const auto& [name, t] : tensors) {
    ASSERT_TRUE(f.contains(name)) << name;
    const Tensor back = f.get(name);
    EXPECT_TRUE(same_bytes(back, t)) << name << " " << back.describe();
    EXPECT_TRUE(back.read_only());
    EXPECT_EQ(reinterpret_cast<uintptr_t>(back.raw()) % gdn2::dtype_size(back.dtype()), 0u) << name;
    EXPECT_EQ(f.info(name).end - f.info(name).begin, t.nbytes());
  }
  // names() follows the data offsets, which follow the write order.
  std::vector<std::string> want;
  for (const auto& [name, t] : tensors) want.push_back(name);
  EXPECT_EQ(f.names(), want);
  // The data section starts 8-byte aligned.
  const std::string bytes = gdn2::safetensors_serialize(tensors);
  uint64_t header_len = 0;
  std::memcpy(&header_len, bytes.data(), 8);
  EXPECT_EQ((8 + header_len) % 8, 0u);
  EXPECT_EQ(std::filesystem::file_size(path), bytes.size());
}

TEST(SafetensorsRoundTrip, ZeroSizeAndScalarAndEmptyFile) {
  const std::vector<std::pair<std::string, Tensor>> tensors = {
      {"a", Tensor::empty({0}, DType::f32)},
      {"b", Tensor::full({}, DType::f64, -1.25)},
      {"c", Tensor::empty({2, 0, 3}, DType::bf16)},
  };
  const SafetensorsFile f = SafetensorsFile::from_bytes(gdn2::safetensors_serialize(tensors));
  EXPECT_EQ(f.get("a").shape(), (gdn2::Shape{0}));
  EXPECT_EQ(f.get("b").shape(), gdn2::Shape{});
  EXPECT_EQ(f.get("b").item(0), -1.25);
  EXPECT_EQ(f.get("c").shape(), (gdn2::Shape{2, 0, 3}));
  EXPECT_EQ(f.get("c").dtype(), DType::bf16);

  const SafetensorsFile none = SafetensorsFile::from_bytes(gdn2::safetensors_serialize({}));
  EXPECT_EQ(none.size(), 0u);
  EXPECT_TRUE(none.names().empty());
}

TEST(SafetensorsRoundTrip, Metadata) {
  const std::map<std::string, std::string> meta = {
      {"format", "pt"}, {"empty", ""}, {"quote\"and\\slash", "line\nbreak\ttab"}, {"unicode", "\xce\xbb=1 \xe2\x9c\x93"},
      {"__metadata__", "as a key inside is fine"}};
  const std::string bytes = gdn2::safetensors_serialize({{"x", Tensor::full({2}, DType::f32, 1)}}, meta);
  const SafetensorsFile f = SafetensorsFile::from_bytes(bytes);
  EXPECT_EQ(f.metadata(), meta);
  EXPECT_EQ(f.names(), std::vector<std::string>{"x"});
}

TEST(SafetensorsRoundTrip, SerializeMatchesWrite) {
  gdn2_test::TempDir dir;
  const std::vector<std::pair<std::string, Tensor>> tensors = {{"w", noise_tensor({4, 3}, DType::f16, 5)},
                                                               {"b", noise_tensor({3}, DType::f32, 6)}};
  const std::map<std::string, std::string> meta = {{"k", "v"}};
  const std::string path = dir.file("x.safetensors");
  gdn2::safetensors_write(path, tensors, meta);
  EXPECT_EQ(gdn2_test::read_file(path), gdn2::safetensors_serialize(tensors, meta));
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"x.safetensors"});  // no temp files left
}

TEST(SafetensorsRoundTrip, ViewsOutliveTheFileAndSurviveAnOverwrite) {
  gdn2_test::TempDir dir;
  const std::string path = dir.file("v.safetensors");
  const Tensor orig = noise_tensor({64}, DType::f32, 9);
  gdn2::safetensors_write(path, {{"x", orig}});
  Tensor view;
  {
    const SafetensorsFile f = SafetensorsFile::open(path);
    view = f.get("x");
  }
  EXPECT_TRUE(same_bytes(view, orig));
  // Writing back through the view (to the same path) replaces the file; the view keeps the old mapping.
  gdn2::safetensors_write(path, {{"x", view}, {"y", Tensor::full({64}, DType::f32, 3)}});
  EXPECT_TRUE(same_bytes(view, orig));
  const SafetensorsFile g = SafetensorsFile::open(path);
  EXPECT_TRUE(same_bytes(g.get("x"), orig));
  EXPECT_EQ(g.get("y").item(63), 3.0);
}

TEST(SafetensorsRoundTrip, MisalignedDataGivesAnAlignedReadOnlyCopy) {
  // Header of odd length: the data section starts at an odd address.
  std::string header = R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  if ((8 + header.size()) % 2 == 0) header += ' ';
  const float vals[2] = {1.5f, -7.0f};
  const SafetensorsFile f = SafetensorsFile::from_bytes(image(header, std::string(reinterpret_cast<const char*>(vals), 8)));
  Tensor t = f.get("x");
  EXPECT_EQ(reinterpret_cast<uintptr_t>(t.raw()) % 4, 0u);
  EXPECT_EQ(t.to_f64_vector(), (std::vector<double>{1.5, -7.0}));
  EXPECT_TRUE(t.read_only());
  EXPECT_THROW(t.raw_mut(), gdn2::ValueError);
}

TEST(SafetensorsRead, GoldenOpsFile) {
  const std::string path = GDN2_GOLDEN_OPS;
  const SafetensorsFile f = SafetensorsFile::open(path);
  EXPECT_EQ(f.metadata().at("format"), "gdn2-golden-ops-v1");
  EXPECT_EQ(f.size(), 124u);
  ASSERT_TRUE(f.contains("pub_tiny.q"));
  const auto& info = f.info("pub_tiny.q");
  EXPECT_EQ(info.dtype, DType::f32);
  EXPECT_EQ(info.shape, (gdn2::Shape{1, 64, 1, 16}));
  EXPECT_EQ(info.begin, 7803392u);
  EXPECT_EQ(info.end, 7807488u);
  const Tensor q = f.get("pub_tiny.q");
  EXPECT_EQ(q.describe(), "F32[1, 64, 1, 16]");
  EXPECT_FLOAT_EQ(static_cast<float>(q.item(0)), -0.11670559644699097f);
  EXPECT_FLOAT_EQ(static_cast<float>(q.item(3)), -0.11217397451400757f);
  EXPECT_TRUE(gdn2::all_finite(q));
  EXPECT_EQ(f.names().front(), "pub_decode1.b");
  EXPECT_EQ(f.names().back(), "pub_tiny.w");
  for (size_t i = 1; i < f.names().size(); ++i)
    EXPECT_LE(f.info(f.names()[i - 1]).end, f.info(f.names()[i]).begin);
}

TEST(SafetensorsRead, UnknownNameAndMissingFile) {
  const SafetensorsFile f = SafetensorsFile::from_bytes(image(R"({"a":)" + kF32Entry + "}", std::string(8, '\0')), "m.st");
  EXPECT_FALSE(f.contains("b"));
  try {
    f.get("b");
    ADD_FAILURE();
  } catch (const gdn2::ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("\"b\""), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("m.st"), std::string::npos);
  }
  EXPECT_THROW(f.info("b"), gdn2::ValueError);
  EXPECT_THROW(SafetensorsFile::open("/nonexistent/dir/x.safetensors"), gdn2::IoError);
  gdn2_test::TempDir dir;
  EXPECT_THROW(SafetensorsFile::open(dir.path()), gdn2::IoError);  // a directory
  const std::string empty = dir.file("empty.safetensors");
  gdn2_test::write_file(empty, "");
  EXPECT_THROW(SafetensorsFile::open(empty), gdn2::FormatError);
}

// ---- one test per malformed-file rule ----

TEST(SafetensorsMalformed, TooShort) {
  expect_format_error("", "only 0 bytes");
  expect_format_error(std::string(7, '\0'), "only 7 bytes");
}

TEST(SafetensorsMalformed, HeaderLength) {
  expect_format_error(std::string(8, '\0') + "{}", "header length is 0");
  std::string over = image("{}");
  over[0] = 3;  // claims 3 bytes, 2 follow
  expect_format_error(over, "exceeds the 2 bytes");
  std::string huge = image("{}");
  const uint64_t n = 100'000'001;
  std::memcpy(huge.data(), &n, 8);
  expect_format_error(huge, "exceeds the limit");
  std::string max = image("{}");
  std::memset(max.data(), 0xff, 8);
  expect_format_error(max, "exceeds the limit");
}

TEST(SafetensorsMalformed, HeaderMustStartWithBrace) {
  expect_format_error(image(" {}"), "start with '{'");
  expect_format_error(image("[1,2]"), "start with '{'");
  expect_format_error(image("\"x\""), "start with '{'");
}

TEST(SafetensorsMalformed, NotJsonOrNotUtf8) {
  expect_format_error(image(R"({"a":)"), "not valid UTF-8 JSON");
  expect_format_error(image(R"({"a":1,})"), "not valid UTF-8 JSON");
  expect_format_error(image("{\"\xff\xfe\":{}}"), "not valid UTF-8 JSON");  // invalid UTF-8 in a key
  expect_format_error(image("{\"__metadata__\":{\"k\":\"\xc3\"}}"), "not valid UTF-8 JSON");  // truncated sequence
  expect_format_error(image(std::string("{}\0", 3)), "not valid UTF-8 JSON");  // NUL padding is not whitespace
  expect_format_error(image("{} x"), "not valid UTF-8 JSON");
  expect_format_error(image("{/*c*/}"), "not valid UTF-8 JSON");  // no comments
  expect_format_error(image(R"({"a":{"dtype":"F32","shape":[1e999],"data_offsets":[0,0]}})"), "not valid UTF-8 JSON");
}

TEST(SafetensorsMalformed, TrailingSpacesAreFine) {
  const SafetensorsFile f = SafetensorsFile::from_bytes(image("{}     \t\n "));
  EXPECT_EQ(f.size(), 0u);
}

TEST(SafetensorsMalformed, EntryNotAnObject) {
  expect_format_error(image(R"({"a":5})"), "entry \"a\" is not a JSON object");
  expect_format_error(image(R"({"a":[1]})"), "entry \"a\" is not a JSON object");
  expect_format_error(image(R"({"a":"F32"})"), "entry \"a\" is not a JSON object");
  try {  // a hostile name does not blow up the message
    SafetensorsFile::from_bytes(image("{\"" + std::string(100000, 'n') + "\":5}"));
    ADD_FAILURE();
  } catch (const gdn2::FormatError& e) {
    EXPECT_LT(std::string(e.what()).size(), 1500u);
  }
}

TEST(SafetensorsMalformed, MissingOrUnknownField) {
  expect_format_error(image(R"({"a":{"shape":[2],"data_offsets":[0,8]}})", std::string(8, '\0')), "lacks the field \"dtype\"");
  expect_format_error(image(R"({"a":{"dtype":"F32","data_offsets":[0,8]}})", std::string(8, '\0')), "lacks the field \"shape\"");
  expect_format_error(image(R"({"a":{"dtype":"F32","shape":[2]}})", std::string(8, '\0')), "lacks the field \"data_offsets\"");
  expect_format_error(image(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":1}})", std::string(8, '\0')),
                      "unknown field \"x\"");
}

TEST(SafetensorsMalformed, BadDType) {
  expect_format_error(image(R"({"a":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]}})", "ab"), "unsupported dtype");
  expect_format_error(image(R"({"a":{"dtype":"f32","shape":[2],"data_offsets":[0,8]}})", std::string(8, '\0')), "unsupported dtype");
  expect_format_error(image(R"({"a":{"dtype":4,"shape":[2],"data_offsets":[0,8]}})", std::string(8, '\0')), "dtype is not a string");
  expect_format_error(image(R"({"a":{"dtype":null,"shape":[2],"data_offsets":[0,8]}})", std::string(8, '\0')), "dtype is not a string");
}

TEST(SafetensorsMalformed, BadShape) {
  const std::string d(8, '\0');
  expect_format_error(image(R"({"a":{"dtype":"F32","shape":2,"data_offsets":[0,8]}})", d), "shape is not an array");
  expect_format_error(image(R"({"a":{"dtype":"F32","shape":{"n":2},"data_offsets":[0,8]}})", d), "shape is not an array");
  expect_format_error(image(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", d), "not a non-negative int64");
  expect_format_error(image(R"({"a":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}})", d), "not a non-negative int64");
  expect_format_error(image(R"({"a":{"dtype":"F32","shape":["2"],"data_offsets":[0,8]}})", d), "not a non-negative int64");
  expect_format_error(image(R"({"a":{"dtype":"F32","shape":[[2]],"data_offsets":[0,8]}})", d), "not a non-negative int64");
  expect_format_error(image(R"({"a":{"dtype":"F32","shape":[true],"data_offsets":[0,8]}})", d), "not a non-negative int64");
  expect_format_error(image(R"({"a":{"dtype":"U8","shape":[9223372036854775808],"data_offsets":[0,8]}})", d),
                      "not a non-negative int64");
  expect_format_error(image(R"({"a":{"dtype":"U8","shape":[4294967296,4294967296],"data_offsets":[0,8]}})", d),
                      "overflows int64");
  // An overflow in a prefix counts even if a later extent is 0, as in Tensor's own shape rule.
  expect_format_error(image(R"({"a":{"dtype":"U8","shape":[4294967296,4294967296,0],"data_offsets":[0,0]}})", d),
                      "overflows int64");
  // A product that fits int64 but not in bytes.
  expect_format_error(image(R"({"a":{"dtype":"F64","shape":[4611686018427387904],"data_offsets":[0,8]}})", d), "needs");
}

TEST(SafetensorsMalformed, BadDataOffsets) {
  const std::string d(8, '\0');
  expect_format_error(image(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":8}})", d), "not an array of two");
  expect_format_error(image(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8]}})", d), "not an array of two");
  expect_format_error(image(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4,8]}})", d), "not an array of two");
  expect_format_error(image(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}})", d), "not non-negative integers");
  expect_format_error(image(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8.0]}})", d), "not non-negative integers");
  expect_format_error(image(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":["0","8"]}})", d), "not non-negative integers");
  expect_format_error(image(R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", d), "begin > end");
  expect_format_error(image(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", d), "end past the data section");
  expect_format_error(image(R"({"a":{"dtype":"U8","shape":[0],"data_offsets":[18446744073709551615,18446744073709551615]}})", d),
                      "end past the data section");
}

TEST(SafetensorsMalformed, SizeMismatch) {
  const std::string d(16, '\0');
  expect_format_error(image(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", d), "needs 3 x 4 bytes");
  expect_format_error(image(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,8]}})", d), "needs 1 x 4 bytes");
  expect_format_error(image(R"({"a":{"dtype":"BF16","shape":[],"data_offsets":[0,0]}})", d), "needs 1 x 2 bytes");
  expect_format_error(image(R"({"a":{"dtype":"I8","shape":[0],"data_offsets":[0,1]}})", d), "needs 0 x 1 bytes");
}

TEST(SafetensorsMalformed, OverlappingRanges) {
  const std::string d(16, '\0');
  expect_format_error(image(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                            R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", d), "overlap");
  expect_format_error(image(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                            R"("b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", d), "overlap");
  // Contained in a longer earlier range (not just adjacent to it).
  expect_format_error(image(R"({"a":{"dtype":"U8","shape":[16],"data_offsets":[0,16]},)"
                            R"("b":{"dtype":"U8","shape":[2],"data_offsets":[2,4]},)"
                            R"("c":{"dtype":"U8","shape":[2],"data_offsets":[6,8]}})", d), "overlap");
  // Adjacent ranges, gaps, and zero-size tensors anywhere are fine.
  const SafetensorsFile f = SafetensorsFile::from_bytes(
      image(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
            R"("b":{"dtype":"U8","shape":[2],"data_offsets":[10,12]},)"
            R"("z":{"dtype":"F32","shape":[0],"data_offsets":[4,4]},)"
            R"("y":{"dtype":"F64","shape":[3,0],"data_offsets":[4,4]},)"
            R"("c":{"dtype":"F32","shape":[1],"data_offsets":[12,16]}})", d));
  EXPECT_EQ(f.names(), (std::vector<std::string>{"a", "y", "z", "b", "c"}));
}

TEST(SafetensorsMalformed, BadMetadata) {
  expect_format_error(image(R"({"__metadata__":"x"})"), "__metadata__ is not a JSON object");
  expect_format_error(image(R"({"__metadata__":["x"]})"), "__metadata__ is not a JSON object");
  expect_format_error(image(R"({"__metadata__":{"k":1}})"), "value of \"k\" is not a string");
  expect_format_error(image(R"({"__metadata__":{"k":null}})"), "value of \"k\" is not a string");
  expect_format_error(image(R"({"__metadata__":{"k":{"a":"b"}}})"), "value of \"k\" is not a string");
}

TEST(SafetensorsMalformed, DuplicateKeys) {
  const std::string d(16, '\0');
  expect_format_error(image(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                            R"("a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})", d), "duplicate key \"a\"");
  expect_format_error(image(R"({"a":{"dtype":"F32","dtype":"I32","shape":[2],"data_offsets":[0,8]}})", d),
                      "duplicate key \"dtype\"");
  expect_format_error(image(R"({"__metadata__":{"k":"1","k":"2"}})"), "duplicate key \"k\"");
  expect_format_error(image(R"({"__metadata__":{},"__metadata__":{}})"), "duplicate key \"__metadata__\"");
  // The same key in two different objects is not a duplicate.
  const SafetensorsFile f = SafetensorsFile::from_bytes(image(
      R"({"__metadata__":{"a":"x"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", d));
  EXPECT_EQ(f.metadata().at("a"), "x");
}

TEST(SafetensorsMalformed, DeepNesting) {
  expect_format_error(image("{\"a\":" + std::string(100000, '[') + std::string(100000, ']') + "}"), "nested more than");
  expect_format_error(image("{\"__metadata__\":" + std::string(50, '[')), "nested more than");
}

// ---- mutation fuzz: every mutant either loads (and its tensors can be read) or throws FormatError ----

TEST(SafetensorsFuzz, MutationsLoadOrThrowFormatError) {
  const std::string valid = gdn2::safetensors_serialize(
      {{"a", noise_tensor({2, 3}, DType::f32, 1)}, {"b", noise_tensor({4}, DType::bf16, 2)},
       {"c", Tensor::empty({0, 2}, DType::i64)}, {"d", noise_tensor({}, DType::u8, 3)}},
      {{"format", "fuzz"}});
  uint64_t header_len = 0;
  std::memcpy(&header_len, valid.data(), 8);
  const std::string structural = "{}[]\",:0123456789-+.eE \\u";
  std::mt19937_64 rng(12345);
  int loaded = 0, rejected = 0;
  for (int iter = 0; iter < 4000; ++iter) {
    std::string m = valid;
    const int kind = static_cast<int>(rng() % 6);
    if (kind == 0) {  // flip random bits anywhere
      const int flips = 1 + static_cast<int>(rng() % 4);
      for (int i = 0; i < flips; ++i) m[rng() % m.size()] ^= static_cast<char>(1u << (rng() % 8));
    } else if (kind == 1) {  // overwrite header bytes with JSON-significant characters
      const int edits = 1 + static_cast<int>(rng() % 3);
      for (int i = 0; i < edits; ++i) m[8 + rng() % header_len] = structural[rng() % structural.size()];
    } else if (kind == 2) {  // truncate
      m.resize(rng() % m.size());
    } else if (kind == 3) {  // edit the header length
      const uint64_t choices[] = {0, 1, header_len - 1, header_len + 1, m.size() - 8, m.size() - 7,
                                  uint64_t{1} << 63, ~uint64_t{0}, 100'000'000, rng() % (2 * m.size())};
      const uint64_t n = choices[rng() % std::size(choices)];
      std::memcpy(m.data(), &n, 8);
    } else if (kind == 4) {  // delete or insert a byte in the header, keeping or fixing the length
      const size_t at = 8 + rng() % header_len;
      if (rng() % 2) m.erase(at, 1); else m.insert(at, 1, structural[rng() % structural.size()]);
      if (rng() % 2) {
        const uint64_t n = m.size() < valid.size() ? header_len - 1 : header_len + 1;
        std::memcpy(m.data(), &n, 8);
      }
    } else {  // change a digit of a number in the header (offsets and shapes)
      std::vector<size_t> digits;
      for (size_t i = 8; i < 8 + header_len; ++i)
        if (m[i] >= '0' && m[i] <= '9') digits.push_back(i);
      m[digits[rng() % digits.size()]] = static_cast<char>('0' + rng() % 10);
    }
    try {
      const SafetensorsFile f = SafetensorsFile::from_bytes(m, "fuzz");
      unsigned sum = 0;
      for (const std::string& name : f.names()) {
        const Tensor t = f.get(name);
        const auto* p = static_cast<const uint8_t*>(t.raw());
        for (size_t i = 0; i < t.nbytes(); ++i) sum += p[i];  // touch every byte (ASan checks the bounds)
      }
      (void)sum;
      ++loaded;
    } catch (const gdn2::FormatError&) {
      ++rejected;
    } catch (const std::exception& e) {
      FAIL() << "iteration " << iter << " threw a non-FormatError: " << e.what();
    }
  }
  EXPECT_GT(loaded, 100);
  EXPECT_GT(rejected, 1000);
}

// ---- writer validation ----

TEST(SafetensorsWrite, RejectsBadInput) {
  gdn2_test::TempDir dir;
  const std::string path = dir.file("w.safetensors");
  const Tensor x = Tensor::zeros({2}, DType::f32);
  EXPECT_THROW(gdn2::safetensors_write(path, {{"", x}}), gdn2::ValueError);
  EXPECT_THROW(gdn2::safetensors_write(path, {{"__metadata__", x}}), gdn2::ValueError);
  EXPECT_THROW(gdn2::safetensors_write(path, {{"a", x}, {"a", x}}), gdn2::ValueError);
  EXPECT_THROW(gdn2::safetensors_write(path, {{"a", Tensor()}}), gdn2::ValueError);
  EXPECT_THROW(gdn2::safetensors_write(path, {{"bad\xff", x}}), gdn2::ValueError);
  EXPECT_THROW(gdn2::safetensors_write(path, {{"a", x}}, {{"k", "\xc3"}}), gdn2::ValueError);
  EXPECT_TRUE(dir.entries().empty());  // nothing written, no temp files
  EXPECT_THROW(gdn2::safetensors_write(dir.file("missing/w.safetensors"), {{"a", x}}), gdn2::IoError);
  EXPECT_TRUE(dir.entries().empty());
}

TEST(SafetensorsWrite, ViewsAndSlicesWriteTheirOwnBytes) {
  const Tensor big = Tensor::from_vector<int32_t>({3, 2}, {0, 1, 2, 3, 4, 5});
  const SafetensorsFile f = SafetensorsFile::from_bytes(gdn2::safetensors_serialize({{"s", big.slice0(1, 2)}}));
  EXPECT_EQ(f.get("s").to_f64_vector(), (std::vector<double>{2, 3}));
}

}  // namespace
