#include "llm/train/stop_request.hpp"

#include <atomic>
#include <vector>

#include "llm/train/trainer.hpp"

namespace llm {
namespace {

constexpr int kStopSignals[3] = {SIGUSR1, SIGTERM, SIGINT};

std::atomic<int> first_stop_signal{0};
static_assert(std::atomic<int>::is_always_lock_free, "the signal handler needs a lock-free flag");

extern "C" void on_stop_signal(int signal) {
  int none = 0;
  if (!first_stop_signal.compare_exchange_strong(none, signal) && signal == SIGINT) {
    // Async-signal-safe: the default action of SIGINT ends the process without a checkpoint.
    std::signal(SIGINT, SIG_DFL);
    std::raise(SIGINT);
  }
}

}  // namespace

StopSignalHandlers::StopSignalHandlers() {
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;  // reads and writes in progress carry on; the loop polls the flag
  for (int i = 0; i < 3; ++i) sigaction(kStopSignals[i], &action, &previous_[i]);
}

StopSignalHandlers::~StopSignalHandlers() {
  for (int i = 0; i < 3; ++i) sigaction(kStopSignals[i], &previous_[i], nullptr);
}

int stop_signal() { return first_stop_signal.load(); }

void request_stop(int signal) {
  int none = 0;
  first_stop_signal.compare_exchange_strong(none, signal);
}

void clear_stop_request() { first_stop_signal.store(0); }

int agreed_stop_signal(GradientReducer& reducer) {
  const int local = stop_signal();
  std::vector<double> received{local == SIGUSR1 ? 1.0 : 0.0, local == SIGTERM ? 1.0 : 0.0,
                               local != 0 && local != SIGUSR1 && local != SIGTERM ? 1.0 : 0.0};
  reducer.sum_values(received);
  if (received[0] > 0) return SIGUSR1;
  if (received[1] > 0) return SIGTERM;
  if (received[2] > 0) return local != 0 ? local : SIGINT;
  return 0;
}

const char* stop_signal_name(int signal) {
  switch (signal) {
    case SIGUSR1:
      return "SIGUSR1";
    case SIGTERM:
      return "SIGTERM";
    case SIGINT:
      return "SIGINT";
    default:
      return "a signal";
  }
}

}  // namespace llm
