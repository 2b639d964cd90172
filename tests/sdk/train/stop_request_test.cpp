// The stop flag behind preemption-safe training: a real signal only records itself, the first one
// wins, the handlers go back to what they were, and ranks agree on whether and why to stop.
#include "llm/train/stop_request.hpp"

#include <gtest/gtest.h>

#include <csignal>
#include <vector>

#include "llm/train/trainer.hpp"

namespace {

// Another rank's contribution, added as the all-reduce would.
struct TwoRankReducer : llm::GradientReducer {
  int other_rank_signal = 0;
  int world_size() const override { return 2; }
  void sum_values(std::vector<double>& values) override {
    const int s = other_rank_signal;
    values[0] += s == SIGUSR1 ? 1 : 0;
    values[1] += s == SIGTERM ? 1 : 0;
    values[2] += s == SIGINT ? 1 : 0;
  }
};

TEST(StopRequest, ARealSignalIsRecordedAndTheFirstOneWins) {
  llm::clear_stop_request();
  {
    const llm::StopSignalHandlers handlers;
    EXPECT_EQ(llm::stop_signal(), 0);
    std::raise(SIGUSR1);  // would end the process without the handler
    EXPECT_EQ(llm::stop_signal(), SIGUSR1);
    std::raise(SIGTERM);
    EXPECT_EQ(llm::stop_signal(), SIGUSR1);
    llm::clear_stop_request();
    std::raise(SIGTERM);
    EXPECT_EQ(llm::stop_signal(), SIGTERM);
  }
  llm::clear_stop_request();
}

TEST(StopRequest, TheHandlersBeforeAreRestored) {
  struct sigaction before {};
  sigaction(SIGTERM, nullptr, &before);
  {
    const llm::StopSignalHandlers handlers;
    struct sigaction during {};
    sigaction(SIGTERM, nullptr, &during);
    EXPECT_NE(during.sa_handler, before.sa_handler);
  }
  struct sigaction after {};
  sigaction(SIGTERM, nullptr, &after);
  EXPECT_EQ(after.sa_handler, before.sa_handler);
}

TEST(StopRequest, RanksAgreeOnTheSignalEvenWhenItReachedOnlyAnother) {
  llm::clear_stop_request();
  TwoRankReducer reducer;
  EXPECT_EQ(llm::agreed_stop_signal(reducer), 0);
  reducer.other_rank_signal = SIGTERM;
  EXPECT_EQ(llm::agreed_stop_signal(reducer), SIGTERM);
  llm::request_stop(SIGINT);
  EXPECT_EQ(llm::agreed_stop_signal(reducer), SIGTERM) << "SIGTERM outranks SIGINT";
  reducer.other_rank_signal = SIGUSR1;
  EXPECT_EQ(llm::agreed_stop_signal(reducer), SIGUSR1) << "the time-limit warning wins";
  reducer.other_rank_signal = 0;
  EXPECT_EQ(llm::agreed_stop_signal(reducer), SIGINT);
  llm::clear_stop_request();
}

}  // namespace
