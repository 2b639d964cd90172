// truthfulqa_mc through its plugin on every fixture model and context length: metrics equal the
// reference results (spec §8 tolerances), and the batch size changes nothing.
#include <gtest/gtest.h>

#include <cmath>

#include "sdk/eval/golden_eval.hpp"

namespace llm {
namespace {

using test::GoldenCase;

// mc1 is a 0/1 mean; mc2 is exp of log-likelihood differences (~1e-5 relative each).
constexpr double kRelative = 1e-4;

class TruthfulQaMcTask : public ::testing::TestWithParam<GoldenCase> {};

TEST_P(TruthfulQaMcTask, MetricsMatchTheReferenceResults) {
  const auto& c = GetParam();
  test::EvalFixtureModel fixture(c.model);
  const auto golden = test::golden_results(c);
  EXPECT_EQ(fixture.registry().eval_task("truthfulqa_mc")->version(),
            golden["versions"]["truthfulqa_mc"].get<int>());
  test::expect_metrics_match(fixture.evaluate("truthfulqa_mc", c.max_length, 4),
                             golden["results"]["truthfulqa_mc"], kRelative, c.name());
}

TEST_P(TruthfulQaMcTask, BatchSizeOneFourAndSevenAgree) {
  const auto& c = GetParam();
  test::EvalFixtureModel fixture(c.model);
  const auto one = fixture.evaluate("truthfulqa_mc", c.max_length, 1);
  for (const int64_t batch : {4, 7}) {
    const auto other = fixture.evaluate("truthfulqa_mc", c.max_length, batch);
    ASSERT_EQ(one.size(), other.size());
    for (std::size_t i = 0; i < one.size(); ++i) {
      EXPECT_NEAR(other[i].second, one[i].second, 1e-6 * std::abs(one[i].second))
          << one[i].first << " batch " << batch;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, TruthfulQaMcTask, ::testing::ValuesIn(test::golden_cases()),
                         test::golden_case_name);

}  // namespace
}  // namespace llm
