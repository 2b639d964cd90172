#include <gtest/gtest.h>

#include "llm/error.hpp"
#include "llm/nn/attention.hpp"

namespace llm {
namespace {

TEST(RotaryEmbedding, RotatesPairsHalfADimensionApartByPositionTimesFrequency) {
  const int64_t dim = 8;
  const double theta = 10000.0;
  RotaryEmbedding rope(dim, theta, 16);
  torch::manual_seed(0);
  const auto x = torch::randn({1, 1, 5, dim});
  const auto out = rope.apply(x, 3);
  for (int64_t t = 0; t < 5; ++t) {
    for (int64_t i = 0; i < dim / 2; ++i) {
      const double angle = (3 + t) / std::pow(theta, 2.0 * i / dim);
      const double a = x[0][0][t][i].item<double>();
      const double b = x[0][0][t][i + dim / 2].item<double>();
      EXPECT_NEAR(out[0][0][t][i].item<double>(), a * std::cos(angle) - b * std::sin(angle), 1e-5);
      EXPECT_NEAR(out[0][0][t][i + dim / 2].item<double>(),
                  b * std::cos(angle) + a * std::sin(angle), 1e-5);
    }
  }
}

TEST(RotaryEmbedding, OffsetEqualsTheMatchingSliceOfALongerSequence) {
  RotaryEmbedding rope(16, 10000.0, 8);  // tables grow past max_positions on demand
  const auto x = torch::randn({2, 3, 12, 16});
  const auto full = rope.apply(x, 0);
  EXPECT_TRUE(torch::allclose(rope.apply(x.narrow(2, 9, 3), 9), full.narrow(2, 9, 3)));
}

TEST(RotaryEmbedding, PartialRotaryLeavesTheRemainingDimsUntouched) {
  RotaryEmbedding rope(4, 10000.0, 8);
  const auto x = torch::randn({1, 2, 5, 16});
  const auto out = rope.apply(x, 2);
  EXPECT_TRUE(out.narrow(-1, 4, 12).equal(x.narrow(-1, 4, 12)));
  EXPECT_FALSE(out.narrow(-1, 0, 4).equal(x.narrow(-1, 0, 4)));
  EXPECT_TRUE(torch::allclose(rope.apply(x, 0).select(2, 0), x.select(2, 0)));  // position 0
}

// Scoring-sized batches without autograd take the narrow-and-concatenate form; training and
// decoding the full-width one. Both must give the same values, bit for bit.
TEST(RotaryEmbedding, NarrowAndFullWidthFormsAgreeExactly) {
  RotaryEmbedding rope(16, 10000.0, 64);
  torch::manual_seed(5);
  const auto x = torch::randn({2, 64, 64, 64});  // 8192 rows of 64 dims, 16 rotated
  const auto narrow_form = rope.apply(x, 0);
  const auto full_form = rope.apply(x.clone().requires_grad_(true), 0).detach();
  EXPECT_TRUE(torch::equal(narrow_form, full_form));
}

TEST(RotaryEmbedding, OddRotaryDimIsAUserError) {
  EXPECT_THROW(RotaryEmbedding(5, 10000.0, 8), UserError);
}

}  // namespace
}  // namespace llm
