#include <gtest/gtest.h>

#include <ATen/CPUGeneratorImpl.h>

#include <set>

#include "llm/error.hpp"
#include "llm/sampling.hpp"

namespace llm {
namespace {

SamplingOptions options(double temperature, int64_t top_k, double top_p) {
  SamplingOptions o;
  o.temperature = temperature;
  o.top_k = top_k;
  o.top_p = top_p;
  return o;
}

std::set<int64_t> drawn(const torch::Tensor& logits, const SamplingOptions& o, int draws) {
  auto generator = at::detail::createCPUGenerator(11);
  std::set<int64_t> seen;
  for (int i = 0; i < draws; ++i)
    seen.insert(sample_next(logits, o, &generator)[0].item<int64_t>());
  return seen;
}

TEST(SampleNext, TemperatureZeroIsArgmaxPerRow) {
  const auto logits = torch::tensor({{0.1f, 3.0f, 2.0f}, {5.0f, -1.0f, 4.9f}});
  const auto ids = sample_next(logits, options(0, 0, 1.0));
  EXPECT_EQ(ids.scalar_type(), torch::kLong);
  EXPECT_TRUE(ids.equal(torch::tensor({1, 0}, torch::kLong)));
}

TEST(SampleNext, SameSeedSameDraws) {
  const auto logits = torch::randn({3, 50});
  auto a = at::detail::createCPUGenerator(5);
  auto b = at::detail::createCPUGenerator(5);
  for (int i = 0; i < 10; ++i) {
    EXPECT_TRUE(sample_next(logits, options(1.0, 0, 1.0), &a)
                    .equal(sample_next(logits, options(1.0, 0, 1.0), &b)));
  }
}

TEST(SampleNext, TopKDrawsOnlyTheKMostLikely) {
  const auto logits = torch::tensor({{1.0f, 1.5f, 0.5f, 1.4f, 1.45f}});
  EXPECT_EQ(drawn(logits, options(1.0, 2, 1.0), 200), (std::set<int64_t>{1, 4}));
  EXPECT_EQ(drawn(logits, options(1.0, 0, 1.0), 400).size(), 5u);
}

TEST(SampleNext, TopPKeepsTheSmallestSetReachingTheMass) {
  // probabilities 0.5, 0.3, 0.15, 0.05: top_p 0.7 keeps {0, 1}; a tiny top_p keeps the best one.
  const auto logits = torch::log(torch::tensor({{0.5f, 0.3f, 0.15f, 0.05f}}));
  EXPECT_EQ(drawn(logits, options(1.0, 0, 0.7), 200), (std::set<int64_t>{0, 1}));
  EXPECT_EQ(drawn(logits, options(1.0, 0, 1e-6), 50), (std::set<int64_t>{0}));
}

TEST(SampleNext, OutOfRangeOptionsAreUserErrorsNamingTheFlag) {
  const auto logits = torch::randn({1, 4});
  EXPECT_THROW(sample_next(logits, options(-1, 0, 1.0)), UserError);
  EXPECT_THROW(sample_next(logits, options(1, -2, 1.0)), UserError);
  try {
    sample_next(logits, options(1, 0, 1.5));
    FAIL() << "no UserError";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("--top_p"), std::string::npos);
  }
}

}  // namespace
}  // namespace llm
