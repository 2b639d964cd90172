#include "llm/eval/rolling_windows.hpp"

#include <gtest/gtest.h>

#include <numeric>
#include <random>

namespace llm {
namespace {

std::vector<int64_t> iota(int64_t from, int64_t to) {
  std::vector<int64_t> v(static_cast<std::size_t>(to - from));
  std::iota(v.begin(), v.end(), from);
  return v;
}

// What the model is fed for a window: the last max_length+1 of context+continuation, minus one.
std::vector<int64_t> model_input(const TokenRequest& w, int64_t max_length) {
  std::vector<int64_t> all = w.context;
  all.insert(all.end(), w.continuation.begin(), w.continuation.end());
  const auto keep = std::min<std::size_t>(all.size(), static_cast<std::size_t>(max_length) + 1);
  return std::vector<int64_t>(all.end() - static_cast<std::ptrdiff_t>(keep), all.end() - 1);
}

TEST(RollingWindows, MatchesTheHarnessUnitTestCase) {
  // tests/test_utils.py at 115206dc: L=10, tokens 0..33, EOT=-100.
  const auto windows = rolling_windows(iota(0, 34), -100, 10);
  ASSERT_EQ(windows.size(), 4u);
  std::vector<int64_t> first_input{-100};
  for (int64_t i = 0; i <= 8; ++i) first_input.push_back(i);
  EXPECT_EQ(model_input(windows[0], 10), first_input);
  EXPECT_EQ(windows[0].continuation, iota(0, 10));
  EXPECT_EQ(model_input(windows[1], 10), iota(9, 19));
  EXPECT_EQ(windows[1].continuation, iota(10, 20));
  EXPECT_EQ(model_input(windows[2], 10), iota(19, 29));
  EXPECT_EQ(windows[2].continuation, iota(20, 30));
  EXPECT_EQ(model_input(windows[3], 10), iota(23, 33));
  EXPECT_EQ(windows[3].continuation, iota(30, 34));
}

TEST(RollingWindows, EmptyTextHasNoWindows) { EXPECT_TRUE(rolling_windows({}, 0, 8).empty()); }

TEST(RollingWindows, ScoreEveryTokenOnceWithTheRightHistory) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 500; ++trial) {
    const int64_t length = std::uniform_int_distribution<int64_t>(1, 80)(rng);
    const int64_t max_length = std::uniform_int_distribution<int64_t>(1, 20)(rng);
    const auto tokens = iota(0, length);
    std::vector<int64_t> scored;
    for (const auto& w : rolling_windows(tokens, -1, max_length)) {
      ASSERT_FALSE(w.context.empty());
      ASSERT_LE(static_cast<int64_t>(w.continuation.size()), max_length);
      const auto input = model_input(w, max_length);
      ASSERT_LE(static_cast<int64_t>(input.size()), max_length);
      // The input is the contiguous history right before the last scored token (-1 = EOT).
      const int64_t last = w.continuation.back();
      const int64_t from = last - static_cast<int64_t>(input.size());
      ASSERT_GE(from, -1);
      std::vector<int64_t> history;
      for (int64_t i = from; i < last; ++i) history.push_back(i);
      EXPECT_EQ(input, history);
      scored.insert(scored.end(), w.continuation.begin(), w.continuation.end());
    }
    ASSERT_EQ(scored, tokens) << "length " << length << " max_length " << max_length;
  }
}

}  // namespace
}  // namespace llm
