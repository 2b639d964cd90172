#pragma once
// Graceful stop of a training run on SIGUSR1, SIGTERM or SIGINT (a SLURM warning signal, a
// preemption, Ctrl-C). The handler only records the signal; the trainer polls at each optimizer
// step boundary, agrees with the other ranks on the step to stop at, checkpoints and returns.
#include <csignal>

#include "llm/export.hpp"

namespace llm {

struct GradientReducer;

// The exit status of a run stopped by one of these signals after its checkpoint (EX_TEMPFAIL):
// run it again with --resume (a requeued SLURM job does so by itself).
inline constexpr int kExitStopped = 75;

// Installs the handlers for as long as it lives and restores the previous ones after. A second
// SIGINT while a stop is pending ends the process at once (the usual "press Ctrl-C again").
class LLM_API StopSignalHandlers {
 public:
  StopSignalHandlers();
  ~StopSignalHandlers();
  StopSignalHandlers(const StopSignalHandlers&) = delete;
  StopSignalHandlers& operator=(const StopSignalHandlers&) = delete;

 private:
  struct sigaction previous_[3];
};

// The first stop signal received since the last clear (0: none).
LLM_API int stop_signal();
// What the handler does; for tests and for callers that stop on other events.
LLM_API void request_stop(int signal);
LLM_API void clear_stop_request();

// The signal every rank acts on, 0 when no rank has received one: one all-reduce of three numbers,
// so the ranks stop after the same step even when the signal reached only some of them. SIGUSR1
// (the warning before a time limit, which asks for a requeue) wins over SIGTERM, then SIGINT.
LLM_API int agreed_stop_signal(GradientReducer& reducer);

// "SIGUSR1", "SIGTERM", "SIGINT", or "a signal".
LLM_API const char* stop_signal_name(int signal);

}  // namespace llm
