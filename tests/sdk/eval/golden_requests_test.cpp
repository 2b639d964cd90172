// Per-request parity with the reference implementation's details files: the same token split
// for every (context, continuation), the same rolling windows for every wikitext page, and
// log-likelihoods within 1e-5 relative (spec §8).
#include <gtest/gtest.h>

#include <cmath>

#include "llm/eval/rolling_windows.hpp"
#include "llm/eval/text.hpp"
#include "sdk/eval/golden_eval.hpp"

namespace llm {
namespace {

using test::GoldenCase;

constexpr double kRelative = 1e-5;
// Near-zero log-likelihoods (a confident model) sit at float32 rounding of the logits (~1e-6).
constexpr double kAbsolute = 2e-6;

class GoldenRequests : public ::testing::TestWithParam<GoldenCase> {};

TEST_P(GoldenRequests, TokenSplitsAndLoglikelihoodsMatchTheDetails) {
  const auto& c = GetParam();
  test::EvalFixtureModel fixture(c.model);
  auto scorer = fixture.scorer(c.max_length, 4);
  std::vector<TokenRequest> requests;
  std::vector<Json> expected;
  for (const auto& record : test::golden_details(c)) {
    if (!record.contains("continuation_tokens")) continue;
    const auto pair = scorer.encode_pair(record["context"].get<std::string>(),
                                         record["continuation"].get<std::string>());
    EXPECT_EQ(pair.context, record["context_tokens"].get<std::vector<int64_t>>());
    EXPECT_EQ(pair.continuation, record["continuation_tokens"].get<std::vector<int64_t>>());
    requests.push_back(pair);
    expected.push_back(record);
  }
  ASSERT_EQ(requests.size(), 133u);  // 10 arithmetic + 40 openbookqa + 83 truthfulqa
  const auto results = scorer.loglikelihood_tokens(requests);
  for (std::size_t i = 0; i < results.size(); ++i) {
    const double golden = expected[i]["loglikelihood"].get<double>();
    EXPECT_NEAR(results[i].loglikelihood, golden, kRelative * std::abs(golden) + kAbsolute)
        << expected[i]["task"] << " doc " << expected[i]["doc_id"] << " request "
        << expected[i]["request"];
    EXPECT_EQ(results[i].is_greedy, expected[i]["is_greedy"].get<bool>());
  }
}

TEST_P(GoldenRequests, WikitextWindowsAndPageLoglikelihoodsMatchTheDetails) {
  const auto& c = GetParam();
  test::EvalFixtureModel fixture(c.model);
  auto scorer = fixture.scorer(c.max_length, 3);
  const auto pages = read_task_jsonl(test::data_dir() / "eval-data" / "wikitext.jsonl");
  int checked = 0;
  for (const auto& record : test::golden_details(c)) {
    if (!record.contains("windows")) continue;
    const auto page = pages.at(record["source_index"].get<std::size_t>()).json["page"];
    const auto text = wikitext_detokenize(page.get<std::string>());
    const auto windows = rolling_windows(scorer.encode(text), scorer.eot_id(), c.max_length);
    ASSERT_EQ(windows.size(), record["windows"].size());
    for (std::size_t w = 0; w < windows.size(); ++w) {
      const auto& golden = record["windows"][w];
      EXPECT_EQ(windows[w].context, golden["context_tokens"].get<std::vector<int64_t>>()) << w;
      EXPECT_EQ(windows[w].continuation, golden["continuation_tokens"].get<std::vector<int64_t>>())
          << w;
    }
    const double golden_ll = record["loglikelihood"].get<double>();
    const double ll = scorer.loglikelihood_rolling({text}).at(0);
    EXPECT_NEAR(ll, golden_ll, kRelative * std::abs(golden_ll) + kAbsolute)
        << "page " << record["doc_id"];
    ++checked;
  }
  EXPECT_EQ(checked, 3);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, GoldenRequests, ::testing::ValuesIn(test::golden_cases()),
                         test::golden_case_name);

}  // namespace
}  // namespace llm
