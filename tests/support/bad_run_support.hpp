#pragma once
// Shared by the bad-run corpus (tests/host/bad_run_test.cpp) and the run-safety tests: a prepared
// dataset, finetune arguments, a snapshot of a directory tree, the checks every refused run must
// pass, and a launcher that can limit the child (file size, read-only mount, stdout target).
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "llm/atomic_file.hpp"
#include "support/test_support.hpp"

extern char** environ;

namespace llm::test::bad_run {

namespace fs = std::filesystem;

inline void write_text(const fs::path& path, const std::string& text) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
}

inline fs::path model_dir() { return data_dir() / "tiny-pythia-trained"; }

// The Dolly sample prepared once per test process.
inline const fs::path& prepared_data() {
  static TempDir dir;
  static const fs::path data = [] {
    const auto out = dir.path() / "data";
    const auto result = run_llmhost({"--task", "prepare", "--plugin", "dolly", "--data_file",
                                     (data_dir() / "datasets/dolly-sample.jsonl").string(),
                                     "--checkpoint_dir", model_dir().string(), "--destination_dir",
                                     out.string(), "--max_seq_length", "96"});
    EXPECT_EQ(result.exit_code, 0) << result.err;
    return out;
  }();
  return data;
}

// A short LoRA finetune writing a checkpoint after every step (2 steps unless `extra` says).
inline std::vector<std::string> finetune_args(const fs::path& out_dir,
                                              const std::vector<std::string>& extra = {},
                                              bool default_max_steps = true) {
  std::vector<std::string> args = {"--task",
                                   "finetune",
                                   "--plugin",
                                   "lora",
                                   "--data_dir",
                                   prepared_data().string(),
                                   "--checkpoint_dir",
                                   model_dir().string(),
                                   "--out_dir",
                                   out_dir.string(),
                                   "--batch_size",
                                   "4",
                                   "--micro_batch_size",
                                   "4",
                                   "--warmup_steps",
                                   "1",
                                   "--learning_rate",
                                   "0.01",
                                   "--save_interval",
                                   "1",
                                   "--eval_interval",
                                   "0",
                                   "--eval_iters",
                                   "0",
                                   "--seed",
                                   "3"};
  const bool steps_given = std::find(extra.begin(), extra.end(), "--max_steps") != extra.end();
  if (default_max_steps && !steps_given) args.insert(args.end(), {"--max_steps", "2"});
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

// Every entry under `root` (symlinks not followed): relative path -> file bytes, "<dir>" or the
// link target. The run's lock file is left out: holding the output directory is not writing it.
inline std::map<std::string, std::string> snapshot(const fs::path& root) {
  std::map<std::string, std::string> entries;
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator();
       ++it) {
    const auto relative = it->path().lexically_relative(root).string();
    if (it->path().filename() == ".llmhost.lock") continue;
    const auto status = it->symlink_status();
    if (fs::is_symlink(status)) {
      entries[relative] = "-> " + fs::read_symlink(it->path()).string();
    } else if (fs::is_directory(status)) {
      entries[relative] = "<dir>";
    } else {
      entries[relative] = read_file_bytes(it->path());
    }
  }
  return entries;
}

inline void expect_one_error_line(const std::string& err) {
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << "expected one line:\n" << err;
  EXPECT_EQ(err.rfind("llmhost: error: ", 0), 0u) << err;
}

// A write that fails after the work (results, a checkpoint) follows the work's own progress
// lines: the error is then the last line, and the only error line.
inline void expect_error_as_last_line(const std::string& err) {
  ASSERT_FALSE(err.empty());
  ASSERT_EQ(err.back(), '\n') << err;
  const auto start = err.rfind('\n', err.size() - 2);
  const auto last = err.substr(start == std::string::npos ? 0 : start + 1);
  EXPECT_EQ(last.rfind("llmhost: error: ", 0), 0u) << err;
  std::size_t errors = 0;
  for (auto at = err.find("llmhost: error: "); at != std::string::npos;
       at = err.find("llmhost: error: ", at + 1)) {
    ++errors;
  }
  EXPECT_EQ(errors, 1u) << err;
}

// No temporary (".x.tmp-PID", ".x.tmp.PID...") anywhere under `root`.
inline void expect_no_temporaries(const fs::path& root) {
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator();
       ++it) {
    EXPECT_FALSE(llm::temporary_owner(it->path().filename().string()))
        << "temporary left behind: " << it->path();
  }
}

// What the child does before it becomes llmhost.
struct ChildLimits {
  std::optional<rlim_t> max_file_size;  // RLIMIT_FSIZE, with SIGXFSZ ignored: writes fail EFBIG
  fs::path read_only;                   // bind-mounted read-only in a private mount namespace
  fs::path stdout_target;               // stdout opened on this (a device, say)
};

// Exit code 77 from the child: it could not apply the limits (no privilege for a mount).
constexpr int kLimitsUnavailable = 77;

inline CommandResult run_llmhost_limited(const std::vector<std::string>& args,
                                         const ChildLimits& limits) {
  TempDir capture;
  const auto out_path = (capture.path() / "stdout").string();
  const auto err_path = (capture.path() / "stderr").string();
  std::vector<std::string> argv_storage{LLMHOST_BINARY};
  argv_storage.insert(argv_storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_storage) argv.push_back(a.data());
  argv.push_back(nullptr);
  const std::string stdout_path =
      limits.stdout_target.empty() ? out_path : limits.stdout_target.string();
  const std::string read_only = limits.read_only.string();

  // Between fork and exec only system calls: the test process may have threads.
  const pid_t pid = ::fork();
  if (pid == 0) {
    if (!read_only.empty()) {
      if (::unshare(CLONE_NEWNS) != 0 ||
          ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
          ::mount(read_only.c_str(), read_only.c_str(), nullptr, MS_BIND, nullptr) != 0 ||
          ::mount(nullptr, read_only.c_str(), nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY, nullptr) !=
              0) {
        ::_exit(kLimitsUnavailable);
      }
    }
    if (limits.max_file_size) {
      ::signal(SIGXFSZ, SIG_IGN);  // ignored dispositions survive exec
      const rlimit limit{*limits.max_file_size, *limits.max_file_size};
      if (::setrlimit(RLIMIT_FSIZE, &limit) != 0) ::_exit(kLimitsUnavailable);
    }
    const int in = ::open("/dev/null", O_RDONLY);
    const int out = ::open(stdout_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (in < 0 || out < 0 || err < 0) ::_exit(kLimitsUnavailable);
    ::dup2(in, 0);
    ::dup2(out, 1);
    ::dup2(err, 2);
    ::execve(argv[0], argv.data(), environ);
    ::_exit(127);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  CommandResult result;
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  if (limits.stdout_target.empty()) result.out = read_file_bytes(out_path);
  result.err = read_file_bytes(err_path);
  return result;
}

// Starts llmhost without waiting (stdout and stderr to files); wait_for_exit_code() reaps it.
inline pid_t spawn_llmhost(const std::vector<std::string>& args, const fs::path& out_path,
                           const fs::path& err_path) {
  std::vector<std::string> argv_storage{LLMHOST_BINARY};
  argv_storage.insert(argv_storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_storage) argv.push_back(a.data());
  argv.push_back(nullptr);
  const std::string out = out_path.string(), err = err_path.string();
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int in_fd = ::open("/dev/null", O_RDONLY);
    const int out_fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int err_fd = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (in_fd < 0 || out_fd < 0 || err_fd < 0) ::_exit(127);
    ::dup2(in_fd, 0);
    ::dup2(out_fd, 1);
    ::dup2(err_fd, 2);
    ::execve(argv[0], argv.data(), environ);
    ::_exit(127);
  }
  return pid;
}

inline int wait_for_exit_code(pid_t pid) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// The pid of a process that has ended (and been reaped): an owner that is gone.
inline pid_t dead_pid() {
  const pid_t pid = ::fork();
  if (pid == 0) ::_exit(0);
  ::waitpid(pid, nullptr, 0);
  return pid;
}

}  // namespace llm::test::bad_run
