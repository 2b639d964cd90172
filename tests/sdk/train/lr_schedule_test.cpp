#include "llm/train/lr_schedule.hpp"

#include <gtest/gtest.h>

namespace {

TEST(LrSchedule, WarmsUpLinearlyToTheBaseRate) {
  const llm::LrSchedule s{3e-4, 100, 1000, 0.0};
  EXPECT_DOUBLE_EQ(s.at(1), 3e-6);
  EXPECT_DOUBLE_EQ(s.at(50), 1.5e-4);
  EXPECT_DOUBLE_EQ(s.at(100), 3e-4);
}

TEST(LrSchedule, DecaysMonotonicallyToTheEndOfTheRunWithoutRestarting) {
  // lit-gpt's CosineAnnealingLR went back up after T_max; ours must only go down.
  const llm::LrSchedule s{3e-4, 100, 1562, 0.0};
  double previous = s.at(100);
  for (int64_t step = 101; step <= 1562; ++step) {
    const double lr = s.at(step);
    ASSERT_LE(lr, previous) << "step " << step;
    ASSERT_GT(lr, 0.0) << "the last step still learns";
    previous = lr;
  }
  EXPECT_LT(s.at(1562), 1e-8);
  EXPECT_NEAR(s.at(831), 1.5e-4, 1e-6);  // half-way through the decay: half the rate
}

TEST(LrSchedule, EndsAtMinLrWhenOneIsGiven) {
  const llm::LrSchedule s{1e-3, 0, 100, 1e-4};
  EXPECT_NEAR(s.at(1), 1e-3, 1e-6);
  EXPECT_GT(s.at(100), 1e-4);
  EXPECT_LT(s.at(100), 1.01e-4);
}

}  // namespace
