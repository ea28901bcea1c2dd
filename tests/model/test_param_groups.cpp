// Parameter groups: a group's weights are rows of one matrix that inference multiplies in one product; the members'
// tensors are views of it, so it always holds their current values; the fused inference path gives the training
// path's loss.
#include <gtest/gtest.h>

#include "gdn2/model/lm.h"
#include "model/model_test_util.h"
#include "model/params.h"

namespace gdn2 {
namespace {

TEST(ParamGroups, MembersAreRowsOfTheGroupMatrix) {
  const ModelConfig c = test::tiny_config("GKDSAW");
  ParamStore ps(c, DType::f64, Device::cpu, DType::f64);
  ps.init(5, c.initializer_range, c.num_layers());
  int groups = 0;
  for (const std::string group : {"model.layers.0.linear_attn.in", "model.layers.2.linear_attn.in",
                                  "model.layers.1.linear_attn.in", "model.layers.3.linear_attn.in",
                                  "model.layers.4.mlp.gate_up"}) {
    const Tensor& w = ps.group_weight(group);
    const std::vector<std::string>& names = ps.group_names(group);
    ASSERT_EQ(names.size(), ps.group_rows(group).size());
    int64_t row = 0;
    for (size_t i = 0; i < names.size(); ++i) {
      const Param& p = ps.at(names[i]);
      ASSERT_EQ(p.value.size(0), ps.group_rows(group)[i]);
      EXPECT_EQ(p.value.raw(), w.slice0(row, row + p.value.size(0)).raw()) << names[i];
      row += p.value.size(0);
    }
    EXPECT_EQ(row, w.size(0));
    ++groups;
  }
  EXPECT_EQ(groups, 5);
  // set() writes into the group's rows.
  Param& z = ps.at("model.layers.2.linear_attn.in_proj_z.weight");
  const Tensor fresh = Tensor::full(z.spec.shape, DType::f64, 0.25);
  ps.set(z, fresh);
  const Tensor& w = ps.group_weight("model.layers.2.linear_attn.in");
  const int64_t z_row = ps.group_rows("model.layers.2.linear_attn.in")[0];
  EXPECT_EQ(w.slice0(z_row, z_row + 1).item(3), 0.25);
  EXPECT_THROW(ps.group_weight("model.layers.5.linear_attn.in"), ValueError);  // attention has no input group
}

TEST(ParamGroups, FusedInferenceGivesTheTrainingLoss) {
  const ModelConfig c = test::tiny_config("GKDSAW");
  LanguageModel m(c, DType::f64);
  m.init_random(7);
  const Tensor ids = test::random_ids(2, 9, c.vocab_size, 8), targets = test::random_ids(2, 9, c.vocab_size, 9);
  m.params().zero_grad();
  const double train = m.forward_loss(ids, targets, true);
  const double infer = m.forward_loss(ids, targets, false);
  EXPECT_NEAR(infer, train, 1e-12 * std::abs(train));
}

}  // namespace
}  // namespace gdn2
