#include <gtest/gtest.h>

#include "llm/error.hpp"
#include "llm/nn/kv_cache.hpp"

namespace llm {
namespace {

TEST(KVCache, AppendReturnsEverythingCachedSoFarInOrder) {
  KVCache cache(2, 1, 2, 6, 4, torch::TensorOptions().dtype(torch::kFloat));
  const auto k1 = torch::randn({1, 2, 4, 4});
  const auto v1 = torch::randn({1, 2, 4, 4});
  for (int64_t layer = 0; layer < 2; ++layer) {
    const auto [k, v] = cache.append(layer, k1, v1);
    EXPECT_TRUE(k.equal(k1));
    EXPECT_TRUE(v.equal(v1));
  }
  cache.advance(4);
  const auto k2 = torch::randn({1, 2, 1, 4});
  const auto [k, v] = cache.append(1, k2, k2);
  ASSERT_EQ(k.size(2), 5);
  EXPECT_TRUE(k.narrow(2, 0, 4).equal(k1));
  EXPECT_TRUE(k.narrow(2, 4, 1).equal(k2));
  EXPECT_EQ(cache.length(), 4);
}

TEST(KVCache, WritingPastCapacityIsAnErrorNotAReallocation) {
  KVCache cache(1, 1, 1, 3, 2, torch::TensorOptions().dtype(torch::kFloat));
  const auto kv = torch::randn({1, 1, 4, 2});
  EXPECT_THROW(cache.append(0, kv, kv), UserError);
}

}  // namespace
}  // namespace llm
