#include "llm/nn/linear_role.hpp"

#include <gtest/gtest.h>

#include <stdexcept>
#include <utility>

namespace llm {
namespace {

TEST(LinearRole, PlainLayerIsOnePartOverEveryRow) {
  const auto layer =
      plain_linear("mlp.up", AdaptableLinear(4, 6, false, torch::kFloat), LinearRole::kMlpUp);
  ASSERT_EQ(layer.parts.size(), 1u);
  EXPECT_TRUE(layer.row_mask([](LinearRole r) { return r == LinearRole::kMlpUp; })
                  .eq(1)
                  .all()
                  .item<bool>());
  EXPECT_TRUE(layer.row_mask([](LinearRole) { return false; }).eq(0).all().item<bool>());
}

TEST(LinearRole, FusedPerHeadLayoutMasksTheSelectedRows) {
  // Two heads of head_dim 2, rows per head [q, k, v]: q k v q k v, two rows each.
  const int64_t d = 2, heads = 2;
  ModelLinear layer{"attention.qkv", AdaptableLinear(4, 3 * heads * d, true, torch::kFloat), {}};
  using Part = std::pair<LinearRole, int64_t>;
  for (const auto& [role, index] :
       {Part{LinearRole::kQuery, 0}, Part{LinearRole::kKey, 1}, Part{LinearRole::kValue, 2}}) {
    layer.parts.push_back({role, index * d, d, heads, 3 * d});
  }
  const auto mask = layer.row_mask([](LinearRole r) { return r != LinearRole::kKey; });
  const auto expected = torch::tensor({1, 1, 0, 0, 1, 1, 1, 1, 0, 0, 1, 1}, torch::kFloat);
  EXPECT_TRUE(mask.equal(expected)) << mask;
}

TEST(LinearRole, APartPastTheLayersRowsIsALogicError) {
  ModelLinear layer{"bad",
                    AdaptableLinear(4, 6, false, torch::kFloat),
                    {LinearPart{LinearRole::kQuery, 0, 4, 2, 4}}};
  EXPECT_THROW(layer.row_mask([](LinearRole) { return true; }), std::logic_error);
}

TEST(LinearRole, NamesAreStable) {
  EXPECT_STREQ(linear_role_name(LinearRole::kAttentionOutput), "attention_output");
  EXPECT_STREQ(linear_role_name(LinearRole::kLmHead), "lm_head");
}

}  // namespace
}  // namespace llm
