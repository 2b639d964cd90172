// Preemption-safe finetuning: SIGUSR1, SIGTERM or SIGINT from outside makes llmhost finish the
// current optimizer step, checkpoint, and exit 75; the resumed run (by --resume, or by itself in a
// requeued SLURM job) ends with the adapter of an uninterrupted run, byte for byte. With two ranks
// the signal reaches one of them and both stop after the same step.
#include <fcntl.h>
#include <netinet/in.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <future>
#include <regex>
#include <thread>

#include "llm/dist/process_group.hpp"
#include "llm/error.hpp"
#include "llm/train/stop_request.hpp"
#include "support/test_support.hpp"

extern char** environ;

namespace {

namespace fs = std::filesystem;
using llm::test::read_file_bytes;
using llm::test::run_llmhost;

constexpr int kSteps = 120;  // long enough for a signal to land mid-run

fs::path model_dir() { return llm::test::data_dir() / "tiny-pythia"; }

const fs::path& prepared_data() {
  static llm::test::TempDir dir;
  static const fs::path data = [] {
    const auto path = dir.path() / "data";
    const auto result = run_llmhost(
        {"--task", "prepare", "--plugin", "dolly", "--data_file",
         (llm::test::data_dir() / "datasets/dolly-sample.jsonl").string(), "--checkpoint_dir",
         model_dir().string(), "--destination_dir", path.string(), "--max_seq_length", "64"});
    EXPECT_EQ(result.exit_code, 0) << result.err;
    return path;
  }();
  return data;
}

// Batch 4 in micro-batches of 2 (one per rank with two ranks), dropout on, no periodic
// checkpoints: the only step-N directory is the one the signal asked for.
std::vector<std::string> finetune_args(const fs::path& out) {
  return {"--task",
          "finetune",
          "--plugin",
          "lora",
          "--checkpoint_dir",
          model_dir().string(),
          "--data_dir",
          prepared_data().string(),
          "--out_dir",
          out.string(),
          "--batch_size",
          "4",
          "--micro_batch_size",
          "2",
          "--max_steps",
          std::to_string(kSteps),
          "--warmup_steps",
          "2",
          "--learning_rate",
          "0.01",
          "--lora_dropout",
          "0.05",
          "--eval_interval",
          "0",
          "--eval_iters",
          "0",
          "--save_interval",
          "0",
          "--seed",
          "11",
          "--dist_timeout",
          "60"};
}

std::vector<std::string> with(std::vector<std::string> args, const std::vector<std::string>& more) {
  args.insert(args.end(), more.begin(), more.end());
  return args;
}

const fs::path& uninterrupted_run() {
  static llm::test::TempDir dir;
  static const fs::path out = [] {
    const auto path = dir.path() / "run";
    const auto result = run_llmhost(finetune_args(path));
    EXPECT_EQ(result.exit_code, 0) << result.err;
    return path;
  }();
  return out;
}

int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

// llmhost running in the background, stderr to a file we can watch.
struct Running {
  pid_t pid = 0;
  fs::path err;
  bool reaped = false;
  int status = 0;

  Running(const std::vector<std::string>& args, fs::path err_file) : err(std::move(err_file)) {
    std::vector<std::string> storage{LLMHOST_BINARY};
    storage.insert(storage.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : storage) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    EXPECT_EQ(posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ), 0);
    posix_spawn_file_actions_destroy(&actions);
  }
  // A failed assertion must not leave the process behind.
  ~Running() {
    if (pid > 0 && !exited(false)) {
      ::kill(pid, SIGKILL);
      exited(true);
    }
  }
  Running(const Running&) = delete;
  Running& operator=(const Running&) = delete;

  std::string stderr_text() const { return read_file_bytes(err); }
  bool exited(bool block) {
    if (!reaped && ::waitpid(pid, &status, block ? 0 : WNOHANG) == pid) reaped = true;
    return reaped;
  }
  // Waits until stderr shows `text`; false when the process ended first or 120 s passed.
  bool wait_for(const std::string& text) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    while (std::chrono::steady_clock::now() < deadline) {
      if (stderr_text().find(text) != std::string::npos) return true;
      if (exited(false)) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return false;
  }
  int exit_code() {
    exited(true);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
};

// The step the run stopped at, from "stopped at step N of M (SIGNAME)"; -1 when absent.
int64_t stopped_step(const std::string& err, const std::string& signal_name) {
  std::smatch m;
  const std::regex line("stopped at step ([0-9]+) of " + std::to_string(kSteps) + " \\(" +
                        signal_name + "\\)");
  return std::regex_search(err, m, line) ? std::stoll(m[1]) : -1;
}

std::string step_dir(int64_t step) {
  std::string digits = std::to_string(step);
  return "step-" + std::string(6 - digits.size(), '0') + digits;
}

void expect_same_adapter_bytes(const fs::path& expected, const fs::path& actual) {
  const auto want = read_file_bytes(expected / "adapter_model.safetensors");
  ASSERT_FALSE(want.empty());
  EXPECT_TRUE(want == read_file_bytes(actual / "adapter_model.safetensors"))
      << actual << " differs from the uninterrupted run's adapter";
}

void signal_then_resume(int signal, const std::string& signal_name) {
  ASSERT_TRUE(fs::exists(uninterrupted_run() / "final"));
  llm::test::TempDir dir;
  const auto out = dir.path() / "run";
  Running run(finetune_args(out), dir.path() / "first.err");
  ASSERT_TRUE(run.wait_for("step 2/")) << run.stderr_text();
  ::kill(run.pid, signal);
  ASSERT_EQ(run.exit_code(), llm::kExitStopped) << run.stderr_text();
  const auto err = run.stderr_text();
  const int64_t step = stopped_step(err, signal_name);
  ASSERT_GE(step, 2) << err;
  ASSERT_LT(step, kSteps) << err;
  EXPECT_TRUE(fs::exists(out / step_dir(step) / "trainer_state.json")) << err;
  EXPECT_FALSE(fs::exists(out / "final"));

  const auto resumed = run_llmhost(with(finetune_args(out), {"--resume"}));
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_NE(resumed.err.find("at step " + std::to_string(step)), std::string::npos) << resumed.err;
  expect_same_adapter_bytes(uninterrupted_run() / "final", out / "final");
}

TEST(Preemption, SigusrOneCheckpointsExits75AndResumesToTheUninterruptedAdapter) {
  signal_then_resume(SIGUSR1, "SIGUSR1");
}

TEST(Preemption, SigtermCheckpointsExits75AndResumesToTheUninterruptedAdapter) {
  signal_then_resume(SIGTERM, "SIGTERM");
}

TEST(Preemption, SigintCheckpointsExits75AndResumesToTheUninterruptedAdapter) {
  signal_then_resume(SIGINT, "SIGINT");
}

TEST(Preemption, ARequeuedSlurmJobResumesWithoutAFlagAndAFreshOneDoesNot) {
  ASSERT_TRUE(fs::exists(uninterrupted_run() / "final"));
  llm::test::TempDir dir;
  const auto out = dir.path() / "run";
  Running run(finetune_args(out), dir.path() / "first.err");
  ASSERT_TRUE(run.wait_for("step 2/")) << run.stderr_text();
  ::kill(run.pid, SIGUSR1);
  ASSERT_EQ(run.exit_code(), llm::kExitStopped) << run.stderr_text();
  const int64_t step = stopped_step(run.stderr_text(), "SIGUSR1");
  ASSERT_GT(step, 0);

  // --resume takes true, false or auto, and says so.
  const auto bad = run_llmhost(with(finetune_args(out), {"--resume=maybe"}));
  EXPECT_EQ(bad.exit_code, llm::kExitBadInput);
  EXPECT_NE(bad.err.find("--resume must be true, false or auto"), std::string::npos) << bad.err;

  const auto resumed =
      run_llmhost(finetune_args(out), {"SLURM_JOB_ID=4242", "SLURM_RESTART_COUNT=1"});
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_NE(resumed.err.find("SLURM restarted job 4242"), std::string::npos) << resumed.err;
  EXPECT_NE(resumed.err.find("at step " + std::to_string(step)), std::string::npos) << resumed.err;
  expect_same_adapter_bytes(uninterrupted_run() / "final", out / "final");

  // The same job id without a restart is a new run: it trains from step 1 over the old directory.
  const auto fresh = run_llmhost(with(finetune_args(out), {"--max_steps", "2"}),
                                 {"SLURM_JOB_ID=4243", "SLURM_RESTART_COUNT=0"});
  ASSERT_EQ(fresh.exit_code, 0) << fresh.err;
  EXPECT_EQ(fresh.err.find("resuming"), std::string::npos) << fresh.err;
}

TEST(Preemption, TwoRanksStopAfterTheSameStepWhenOnlyOneIsSignalled) {
  if (!llm::process_group_backend_available(torch::kCPU))
    GTEST_SKIP() << "no Gloo in this LibTorch";
  ASSERT_TRUE(fs::exists(uninterrupted_run() / "final"));
  llm::test::TempDir dir;
  const auto out = dir.path() / "dp";
  const auto port = std::to_string(free_port());
  auto rank_args = [&](int r) {
    return with(finetune_args(out),
                {"--rank", std::to_string(r), "--world_size", "2", "--master_port", port});
  };
  Running rank0(rank_args(0), dir.path() / "rank0.err");
  Running rank1(rank_args(1), dir.path() / "rank1.err");
  ASSERT_TRUE(rank0.wait_for("step 2/")) << rank0.stderr_text();
  ::kill(rank1.pid, SIGTERM);  // the rank that does not write checkpoints
  EXPECT_EQ(rank1.exit_code(), llm::kExitStopped) << rank1.stderr_text();
  ASSERT_EQ(rank0.exit_code(), llm::kExitStopped) << rank0.stderr_text();
  const int64_t step = stopped_step(rank0.stderr_text(), "SIGTERM");
  ASSERT_GE(step, 2) << rank0.stderr_text();
  ASSERT_LT(step, kSteps);
  EXPECT_TRUE(fs::exists(out / step_dir(step) / "trainer_state.json"));

  std::vector<std::future<llm::test::CommandResult>> resumed;
  for (int r = 0; r < 2; ++r) {
    resumed.push_back(std::async(std::launch::async,
                                 [&, r] { return run_llmhost(with(rank_args(r), {"--resume"})); }));
  }
  for (auto& f : resumed) {
    const auto result = f.get();
    ASSERT_EQ(result.exit_code, 0) << result.err;
  }
  // Two ranks of micro-batch 2 add the same two gradients as one process of two micro-batches.
  expect_same_adapter_bytes(uninterrupted_run() / "final", out / "final");
}

}  // namespace
