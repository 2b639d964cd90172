#include "llm/eval/metrics.hpp"

#include <gtest/gtest.h>

#include <cmath>

namespace llm {
namespace {

TEST(EvalMetrics, MeanStderrUsesSampleVariance) {
  const std::vector<double> four_of_ten{1, 1, 1, 1, 0, 0, 0, 0, 0, 0};
  EXPECT_DOUBLE_EQ(mean(four_of_ten), 0.4);
  // The harness's value for p = 0.4, n = 10 (spec §8).
  EXPECT_DOUBLE_EQ(mean_stderr(four_of_ten), 0.16329931618554522);
  EXPECT_TRUE(std::isnan(mean_stderr({1.0})));
}

TEST(EvalMetrics, PerplexitiesAreCorpusRatios) {
  const std::vector<std::pair<double, double>> pairs{{-10.0, 4.0}, {-2.0, 2.0}};
  EXPECT_DOUBLE_EQ(weighted_perplexity(pairs), std::exp(2.0));
  EXPECT_DOUBLE_EQ(bits_per_byte(pairs), 2.0 / std::log(2.0));
}

TEST(EvalMetrics, FirstMaximumWinsTies) {
  EXPECT_EQ(first_argmax({-3.0, -1.0, -1.0}), 1u);
  EXPECT_EQ(first_argmax({-1.0, -1.0}), 0u);
}

}  // namespace
}  // namespace llm
