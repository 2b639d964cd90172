// arithmetic through its plugin on every fixture model and context length: metrics equal the
// reference results (spec §8 tolerances), and the batch size changes nothing.
#include <gtest/gtest.h>

#include <cmath>

#include "llm/error.hpp"
#include "sdk/eval/golden_eval.hpp"

namespace llm {
namespace {

using test::GoldenCase;

// Accuracy is the greedy flag: exact.
constexpr double kRelative = 0.0;

class ArithmeticTask : public ::testing::TestWithParam<GoldenCase> {};

TEST_P(ArithmeticTask, MetricsMatchTheReferenceResults) {
  const auto& c = GetParam();
  test::EvalFixtureModel fixture(c.model);
  const auto golden = test::golden_results(c);
  EXPECT_EQ(fixture.registry().eval_task("arithmetic_1dc")->version(),
            golden["versions"]["arithmetic_1dc"].get<int>());
  test::expect_metrics_match(fixture.evaluate("arithmetic_1dc", c.max_length, 4),
                             golden["results"]["arithmetic_1dc"], kRelative, c.name());
}

TEST_P(ArithmeticTask, BatchSizeOneFourAndSevenAgree) {
  const auto& c = GetParam();
  test::EvalFixtureModel fixture(c.model);
  const auto one = fixture.evaluate("arithmetic_1dc", c.max_length, 1);
  for (const int64_t batch : {4, 7}) {
    const auto other = fixture.evaluate("arithmetic_1dc", c.max_length, batch);
    ASSERT_EQ(one.size(), other.size());
    for (std::size_t i = 0; i < one.size(); ++i) {
      EXPECT_NEAR(other[i].second, one[i].second, 1e-6 * std::abs(one[i].second))
          << one[i].first << " batch " << batch;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, ArithmeticTask, ::testing::ValuesIn(test::golden_cases()),
                         test::golden_case_name);

}  // namespace
}  // namespace llm

namespace llm {
namespace {

TEST(ArithmeticPlugin, RegistersEveryVariantReadingItsOwnFile) {
  llmhost::PluginRegistry registry;
  registry.load_directories({test::plugin_dir()});
  const auto names = registry.feature_names(PluginKind::kEvalTask);
  for (const char* v : {"1dc", "2da", "2dm", "2ds", "3da", "3ds", "4da", "4ds", "5da", "5ds"}) {
    EXPECT_NE(std::find(names.begin(), names.end(), std::string("arithmetic_") + v), names.end())
        << v;
  }
  // A variant reads <name>.jsonl: the fixture folder has only arithmetic_1dc.jsonl.
  test::EvalFixtureModel fixture("tiny-pythia");
  try {
    fixture.evaluate("arithmetic_2da", 64, 1);
    FAIL() << "expected a UserError";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("arithmetic_2da.jsonl"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace llm
