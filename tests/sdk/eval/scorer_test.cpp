#include "llm/eval/scorer.hpp"

#include <gtest/gtest.h>

#include "llm/error.hpp"
#include "sdk/eval/fake_language_model.hpp"

namespace llm {
namespace {

using test::bigram_log_prob;
using test::byte_encode;
using test::fake_scorer;
using test::kFakeEot;

TEST(LanguageModelScorer, LoglikelihoodSumsTheContinuationTokenLogProbs) {
  auto scorer = fake_scorer(test::bigram_logits, 64, 1);
  const auto result = scorer.loglikelihood({{"ab", "cd"}}).at(0);
  const double expected =
      bigram_log_prob('b', 'c') + bigram_log_prob('c', 'd');  // positions 'b' and 'c' predict
  EXPECT_NEAR(result.loglikelihood, expected, 1e-5);
}

TEST(LanguageModelScorer, IsGreedyOnlyWhenEveryTokenIsTheArgmax) {
  auto scorer = fake_scorer(test::bigram_logits, 64, 1);
  const auto greedy_after = [](int64_t token) {
    return test::bigram_logits(torch::tensor({token}, torch::kLong)).argmax(-1).item<int64_t>();
  };
  const int64_t first = greedy_after('a');
  const int64_t second = greedy_after(first);
  const TokenRequest greedy{{'a'}, {first, second}};
  const TokenRequest not_greedy{{'a'}, {first, (second + 1) % test::kFakeVocab}};
  const auto results = scorer.loglikelihood_tokens({greedy, not_greedy});
  EXPECT_TRUE(results[0].is_greedy);
  EXPECT_FALSE(results[1].is_greedy);
}

TEST(LanguageModelScorer, TrailingContextWhitespaceMovesToTheContinuation) {
  auto scorer = fake_scorer(test::bigram_logits, 64, 1);
  const auto pair = scorer.encode_pair("resource is \t", "coal");
  EXPECT_EQ(pair.context, byte_encode("resource is"));
  EXPECT_EQ(pair.continuation, byte_encode(" \tcoal"));
  EXPECT_EQ(scorer.encode_pair("", "x").context, std::vector<int64_t>{kFakeEot});
}

TEST(LanguageModelScorer, ContinuationTokensAreSplitByTheContextTokenCount) {
  // An encoder that merges "ab" into one token: the boundary token belongs to the continuation.
  ScorerOptions options;
  auto merging = [](const std::string& text) {
    std::vector<int64_t> ids;
    for (std::size_t i = 0; i < text.size(); ++i) {
      if (text.compare(i, 2, "ab") == 0) {
        ids.push_back(256);
        ++i;
      } else {
        ids.push_back(static_cast<unsigned char>(text[i]));
      }
    }
    return ids;
  };
  LanguageModelScorer scorer(test::selected(test::bigram_logits), merging, kFakeEot, torch::kCPU,
                             options);
  const auto pair = scorer.encode_pair("xa", "bc");  // whole = x,ab,c; context = x,a
  EXPECT_EQ(pair.context, (std::vector<int64_t>{'x', 'a'}));
  EXPECT_EQ(pair.continuation, (std::vector<int64_t>{'c'}));
}

TEST(LanguageModelScorer, LongInputsKeepOnlyTheLastMaxLengthTokens) {
  auto truncated = fake_scorer(test::prefix_logits, 8, 1);
  auto roomy = fake_scorer(test::prefix_logits, 64, 1);
  const std::string context = "the left part is never seen by the model";
  const auto a = truncated.loglikelihood({{context, "xyz"}}).at(0).loglikelihood;
  // The same tail (8 input tokens: the last 6 context bytes + "xy") scored with room to spare.
  const auto b = roomy.loglikelihood({{context.substr(context.size() - 6), "xyz"}}).at(0);
  EXPECT_FLOAT_EQ(a, b.loglikelihood);
  const auto c = roomy.loglikelihood({{context, "xyz"}}).at(0).loglikelihood;
  EXPECT_NE(a, c);
}

TEST(LanguageModelScorer, BatchSizeChangesNoNumber) {
  std::vector<LoglikelihoodRequest> requests;
  for (int i = 0; i < 23; ++i) {
    requests.push_back({"question " + std::string(static_cast<std::size_t>(i % 7), 'q') + "?",
                        " answer " + std::to_string(i * 37)});
  }
  auto one = fake_scorer(test::prefix_logits, 16, 1);
  auto four = fake_scorer(test::prefix_logits, 16, 4);
  auto seven = fake_scorer(test::prefix_logits, 16, 7);
  const auto r1 = one.loglikelihood(requests);
  const auto r4 = four.loglikelihood(requests);
  const auto r7 = seven.loglikelihood(requests);
  for (std::size_t i = 0; i < requests.size(); ++i) {
    EXPECT_EQ(r1[i].loglikelihood, r4[i].loglikelihood) << i;
    EXPECT_EQ(r1[i].loglikelihood, r7[i].loglikelihood) << i;
    EXPECT_EQ(r1[i].is_greedy, r7[i].is_greedy) << i;
  }
  EXPECT_LT(seven.forward_passes(), one.forward_passes());
}

TEST(LanguageModelScorer, IdenticalSequencesAreScoredOnce) {
  auto scorer = fake_scorer(test::prefix_logits, 32, 1);
  const auto results = scorer.loglikelihood({{"Q:", " yes"}, {"Q:", " no"}, {"Q:", " yes"}});
  EXPECT_EQ(scorer.forward_passes(), 2);
  EXPECT_EQ(results[0].loglikelihood, results[2].loglikelihood);
  EXPECT_NE(results[0].loglikelihood, results[1].loglikelihood);
}

TEST(LanguageModelScorer, RollingLoglikelihoodScoresEveryTokenOnceAfterEot) {
  auto scorer = fake_scorer(test::bigram_logits, 5, 3);
  const std::string text = "a rolling text of some length";
  double expected = bigram_log_prob(kFakeEot, static_cast<unsigned char>(text[0]));
  for (std::size_t i = 1; i < text.size(); ++i) {
    expected += bigram_log_prob(static_cast<unsigned char>(text[i - 1]),
                                static_cast<unsigned char>(text[i]));
  }
  const auto sums = scorer.loglikelihood_rolling({text, ""});
  EXPECT_NEAR(sums[0], expected, 1e-4);
  EXPECT_EQ(sums[1], 0.0);
}

TEST(LanguageModelScorer, RejectsContinuationsLongerThanTheContext) {
  auto scorer = fake_scorer(test::bigram_logits, 4, 1);
  EXPECT_THROW(scorer.loglikelihood({{"ctx", "too long"}}), UserError);
  EXPECT_THROW(scorer.loglikelihood_tokens({{{1}, {}}}), UserError);
}

}  // namespace
}  // namespace llm
