#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "llm/nn/attention.hpp"

namespace llm {
namespace {

// Head by head in double precision: query t (the last T of S positions) sees keys 0..S-T+t, and
// query head h reads KV head h / (H / KVH).
torch::Tensor naive_attention(const torch::Tensor& q, const torch::Tensor& k,
                              const torch::Tensor& v) {
  const int64_t heads = q.size(1), queries = q.size(2), kv_heads = k.size(1), keys = k.size(2);
  auto out = torch::zeros(q.sizes(), torch::kDouble);
  for (int64_t b = 0; b < q.size(0); ++b) {
    for (int64_t h = 0; h < heads; ++h) {
      const int64_t kv = h / (heads / kv_heads);
      auto scores = torch::matmul(q[b][h].to(torch::kDouble), k[b][kv].to(torch::kDouble).t()) /
                    std::sqrt(double(q.size(3)));
      for (int64_t t = 0; t < queries; ++t) {
        for (int64_t s = keys - queries + t + 1; s < keys; ++s) {
          scores[t][s] = -std::numeric_limits<double>::infinity();
        }
      }
      out[b][h] = torch::matmul(scores.softmax(-1), v[b][kv].to(torch::kDouble));
    }
  }
  return out;
}

struct Shape {
  int64_t heads, kv_heads, queries, keys;
};

class CausalAttention : public ::testing::TestWithParam<Shape> {};

TEST_P(CausalAttention, MatchesHeadByHeadSoftmaxWithinFloatPrecision) {
  const auto shape = GetParam();
  torch::manual_seed(3);
  const auto q = torch::randn({2, shape.heads, shape.queries, 8});
  const auto k = torch::randn({2, shape.kv_heads, shape.keys, 8});
  const auto v = torch::randn({2, shape.kv_heads, shape.keys, 8});
  const auto expected = naive_attention(q, k, v);
  const auto out = causal_attention(q, k, v);
  ASSERT_EQ(out.sizes(), q.sizes());
  EXPECT_LE((out.to(torch::kDouble) - expected).abs().max().item<double>(), 1e-5);
  EXPECT_LE((reference_causal_attention(q, k, v).to(torch::kDouble) - expected)
                .abs()
                .max()
                .item<double>(),
            1e-5);
}

INSTANTIATE_TEST_SUITE_P(Shapes, CausalAttention,
                         ::testing::Values(Shape{4, 4, 6, 6},    // prefill, T == S
                                           Shape{4, 4, 1, 9},    // one decode step
                                           Shape{4, 4, 3, 9},    // a chunk behind a cache
                                           Shape{4, 2, 6, 6},    // grouped-query prefill
                                           Shape{4, 2, 1, 9},    // grouped-query decode
                                           Shape{6, 2, 3, 7}));  // grouped-query chunk

TEST(CausalAttentionInput, MoreQueriesThanKeysIsRefused) {
  const auto q = torch::randn({1, 2, 4, 8});
  const auto kv = torch::randn({1, 2, 3, 8});
  EXPECT_THROW(causal_attention(q, kv, kv), c10::Error);
}

// A fixed layout keeps its tensors and slot count: assign() writes each batch's positions and
// starts into them, the unused slots empty (repeating the total).
TEST(PackedSequencesFixedLayout, AssignRefillsTheSameTensorsWithEmptySlotsAtTheEnd) {
  PackedSequences layout(8, 4, 5, torch::kCPU);
  EXPECT_EQ(layout.lengths(), (std::vector<int64_t>{5, 3}));
  const auto positions = layout.positions();
  layout.assign({2, 5, 1});
  EXPECT_TRUE(layout.positions().is_same(positions));
  EXPECT_TRUE(torch::equal(layout.positions(), torch::tensor({0, 1, 0, 1, 2, 3, 4, 0})));
  EXPECT_TRUE(
      torch::equal(layout.cumulative_lengths(), torch::tensor({0, 2, 7, 8, 8}, torch::kInt)));
  EXPECT_EQ(layout.tokens(), 8);
  EXPECT_EQ(layout.longest(), 5);
}

TEST(PackedSequencesFixedLayout, LengthsThatDoNotFitTheLayoutAreRefused) {
  PackedSequences layout(8, 3, 5, torch::kCPU);
  EXPECT_THROW(layout.assign({4, 3}), c10::Error);                  // 7 of 8 tokens
  EXPECT_THROW(layout.assign({2, 6}), c10::Error);                  // longer than 5
  EXPECT_THROW(layout.assign({2, 2, 2, 2}), c10::Error);            // 4 samples, 3 slots
  EXPECT_THROW(layout.assign({0, 3, 5}), c10::Error);               // an empty sample
  EXPECT_THROW(PackedSequences(8, 1, 5, torch::kCPU), c10::Error);  // 8 > 1 x 5
}

}  // namespace
}  // namespace llm
