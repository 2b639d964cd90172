#include <execinfo.h>
#include <signal.h>
#include <unistd.h>

#include <gtest/gtest.h>

namespace {
// A crash in CI or on the GPU machine prints where it happened before the process dies.
void print_backtrace_and_die(int signal_number) {
  void* frames[64];
  const int count = backtrace(frames, 64);
  const char header[] = "\n*** fatal signal in llmhost_tests; backtrace:\n";
  (void)!write(STDERR_FILENO, header, sizeof(header) - 1);
  backtrace_symbols_fd(frames, count, STDERR_FILENO);
  ::signal(signal_number, SIG_DFL);
  ::raise(signal_number);
}
}  // namespace

int main(int argc, char** argv) {
  ::signal(SIGSEGV, print_backtrace_and_die);
  ::signal(SIGABRT, print_backtrace_and_die);
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
