// wikitext through its plugin on every fixture model and context length: metrics equal the
// reference results (spec §8 tolerances), and the batch size changes nothing.
#include <gtest/gtest.h>

#include <cmath>

#include "sdk/eval/golden_eval.hpp"

namespace llm {
namespace {

using test::GoldenCase;

// word_perplexity's relative error is ~19x the log-likelihood's (spec §8).
constexpr double kRelative = 5e-4;

class WikitextTask : public ::testing::TestWithParam<GoldenCase> {};

TEST_P(WikitextTask, MetricsMatchTheReferenceResults) {
  const auto& c = GetParam();
  test::EvalFixtureModel fixture(c.model);
  const auto golden = test::golden_results(c);
  EXPECT_EQ(fixture.registry().eval_task("wikitext")->version(),
            golden["versions"]["wikitext"].get<int>());
  test::expect_metrics_match(fixture.evaluate("wikitext", c.max_length, 4),
                             golden["results"]["wikitext"], kRelative, c.name());
}

TEST_P(WikitextTask, BatchSizeOneFourAndSevenAgree) {
  const auto& c = GetParam();
  test::EvalFixtureModel fixture(c.model);
  const auto one = fixture.evaluate("wikitext", c.max_length, 1);
  for (const int64_t batch : {4, 7}) {
    const auto other = fixture.evaluate("wikitext", c.max_length, batch);
    ASSERT_EQ(one.size(), other.size());
    for (std::size_t i = 0; i < one.size(); ++i) {
      EXPECT_NEAR(other[i].second, one[i].second, 1e-6 * std::abs(one[i].second))
          << one[i].first << " batch " << batch;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, WikitextTask, ::testing::ValuesIn(test::golden_cases()),
                         test::golden_case_name);

}  // namespace
}  // namespace llm
