// Every case of the fla golden file (gdn2_ops.safetensors, tests/data/README.md): forward and every gradient within
// SPEC §6.
#include <gtest/gtest.h>

#include "gdn2/ops/gdn2_golden.h"

namespace gdn2 {
namespace {

constexpr double kBudget = 1e-5;  // fp64/fp32 CPU paths vs the fp64 golden

const std::vector<Gdn2GoldenCase>& golden() {
  static const std::vector<Gdn2GoldenCase> cases = gdn2_golden_read(GDN2_GOLDEN_OPS);
  return cases;
}

TEST(Gdn2Golden, FileHasTheSevenPublicCases) {
  std::vector<std::string> names;
  for (const auto& c : golden()) names.push_back(c.name);
  EXPECT_EQ(names, (std::vector<std::string>{"pub_decode1", "pub_gdn", "pub_head128", "pub_kda", "pub_negeig",
                                             "pub_ragged", "pub_tiny"}));
}

struct Variant {
  Gdn2CheckOp op;
  DType compute;
  int chunk;
  size_t min_fields;  // o, ht and the gradients this op produces
};

void check_all(const Variant& v) {
  for (const Gdn2GoldenCase& c : golden()) {
    const Gdn2CheckResult r = gdn2_golden_check(c, v.op, Backend::cpu, v.compute, v.chunk, kBudget);
    EXPECT_TRUE(r.pass) << c.name;
    EXPECT_GE(r.errors.size(), v.min_fields - (c.in.h0.defined() ? 0 : 1)) << c.name;
    for (const auto& [field, err] : r.errors) EXPECT_LE(err, kBudget) << c.name << " " << field;
  }
}

TEST(Gdn2Golden, ChunkF32AllChunkSizes) {
  for (int chunk : {16, 32, 64}) check_all({Gdn2CheckOp::chunk, DType::f32, chunk, 9});
}
TEST(Gdn2Golden, ChunkF64) { check_all({Gdn2CheckOp::chunk, DType::f64, 64, 9}); }
TEST(Gdn2Golden, RecurrentF32Forward) { check_all({Gdn2CheckOp::recurrent, DType::f32, 64, 2}); }
TEST(Gdn2Golden, ReferenceF64) { check_all({Gdn2CheckOp::ref, DType::f64, 64, 9}); }

}  // namespace
}  // namespace gdn2
