// Data-parallel finetuning end to end: llmhost processes over Gloo on 127.0.0.1, launched with
// flags, SLURM-style and torchrun-style variables, compared with one process on the same batch.
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <chrono>
#include <fstream>
#include <future>
#include <sstream>
#include <thread>

#include "llm/dist/process_group.hpp"
#include "llm/safetensors.hpp"
#include "support/test_support.hpp"

extern char** environ;

namespace {

namespace fs = std::filesystem;
using llm::test::run_llmhost;

// The PyTorch wheel's LibTorch (GPU machine) ships no gloo headers: CPU process groups are absent.
#define SKIP_WITHOUT_GLOO()                               \
  if (!llm::process_group_backend_available(torch::kCPU)) \
  GTEST_SKIP() << "this LibTorch build has no Gloo process group"

fs::path model_dir() { return llm::test::data_dir() / "tiny-pythia"; }

int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

// The Dolly sample prepared once for the tiny model.
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

// Global batch 4 = 2 ranks x micro-batch 2, so the ranks' micro-batches line up with the single
// run's (same dropout draws); validation every 2 steps exercises the reduced val loss.
std::vector<std::string> finetune_args(const fs::path& out, int max_steps = 4,
                                       const std::string& eval_interval = "2",
                                       const std::string& save_interval = "1",
                                       const std::string& timeout = "20") {
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
          std::to_string(max_steps),
          "--warmup_steps",
          "1",
          "--learning_rate",
          "0.01",
          "--lora_dropout",
          "0.05",
          "--eval_interval",
          eval_interval,
          "--eval_iters",
          "2",
          "--save_interval",
          save_interval,
          "--seed",
          "5",
          "--dist_timeout",
          timeout};
}

std::vector<std::string> with(std::vector<std::string> args, const std::vector<std::string>& more) {
  args.insert(args.end(), more.begin(), more.end());
  return args;
}

double max_adapter_diff(const fs::path& a, const fs::path& b) {
  const llm::SafetensorsFile fa(a / "adapter_model.safetensors");
  const llm::SafetensorsFile fb(b / "adapter_model.safetensors");
  double worst = 0;
  EXPECT_EQ(fa.tensors().size(), fb.tensors().size());
  for (const auto& info : fa.tensors()) {
    worst =
        std::max(worst, (fa.tensor(info.name) - fb.tensor(info.name)).abs().max().item<double>());
  }
  return worst;
}

// (step, loss, val_loss) columns of metrics.csv, as text rows split by comma.
std::vector<std::vector<std::string>> csv_rows(const fs::path& file) {
  std::ifstream in(file);
  std::vector<std::vector<std::string>> rows;
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> cells;
    std::stringstream s(line);
    std::string cell;
    while (std::getline(s, cell, ',')) cells.push_back(cell);
    rows.push_back(cells);
  }
  return rows;
}

void expect_same_curve(const fs::path& single, const fs::path& parallel) {
  const auto a = csv_rows(single / "metrics.csv");
  const auto b = csv_rows(parallel / "metrics.csv");
  ASSERT_EQ(a.size(), b.size());
  ASSERT_GE(a.size(), 3u);
  const auto& header = a[0];
  for (size_t col = 0; col < header.size(); ++col) {
    if (header[col] != "loss" && header[col] != "val_loss") continue;
    for (size_t row = 1; row < a.size(); ++row) {
      if (a[row][col].empty() || b[row][col].empty()) {
        EXPECT_EQ(a[row][col], b[row][col]) << header[col] << " row " << row;
        continue;
      }
      EXPECT_NEAR(std::stod(a[row][col]), std::stod(b[row][col]), 1e-5)
          << header[col] << " row " << row;
    }
  }
}

// The single-process reference run, trained once.
const fs::path& single_run() {
  static llm::test::TempDir dir;
  static const fs::path out = [] {
    const auto path = dir.path() / "single";
    const auto result = run_llmhost(finetune_args(path));
    EXPECT_EQ(result.exit_code, 0) << result.err;
    return path;
  }();
  return out;
}

// Runs one llmhost per rank concurrently; returns each rank's result.
std::vector<llm::test::CommandResult> run_ranks(
    int world, const std::function<std::vector<std::string>(int)>& args,
    const std::function<std::vector<std::string>(int)>& env) {
  std::vector<std::future<llm::test::CommandResult>> running;
  for (int r = 0; r < world; ++r) {
    running.push_back(
        std::async(std::launch::async, [&, r] { return run_llmhost(args(r), env(r)); }));
  }
  std::vector<llm::test::CommandResult> results;
  for (auto& f : running) results.push_back(f.get());
  return results;
}

void expect_matches_single_run(const std::vector<llm::test::CommandResult>& ranks,
                               const fs::path& out) {
  for (size_t r = 0; r < ranks.size(); ++r) {
    ASSERT_EQ(ranks[r].exit_code, 0) << "rank " << r << ": " << ranks[r].err;
  }
  EXPECT_NE(ranks[0].err.find("data parallel, 2 rank(s) over gloo"), std::string::npos)
      << ranks[0].err;
  EXPECT_EQ(ranks[1].err.find("step 1/"), std::string::npos) << "only rank 0 logs progress";
  EXPECT_LE(max_adapter_diff(single_run() / "final", out / "final"), 1e-5);
  expect_same_curve(single_run(), out);
}

TEST(DistributedFinetune, TwoGlooRanksWithFlagsMatchOneProcessOnTheSameGlobalBatch) {
  SKIP_WITHOUT_GLOO();
  llm::test::TempDir dir;
  const auto out = dir.path() / "dp";
  const auto port = std::to_string(free_port());
  const auto ranks = run_ranks(
      2,
      [&](int r) {
        return with(finetune_args(out), {"--rank", std::to_string(r), "--world_size", "2",
                                         "--master_addr", "127.0.0.1", "--master_port", port});
      },
      [](int) { return std::vector<std::string>{}; });
  expect_matches_single_run(ranks, out);
}

TEST(DistributedFinetune, SlurmStyleVariablesLaunchTwoRanks) {
  SKIP_WITHOUT_GLOO();
  llm::test::TempDir dir;
  const auto out = dir.path() / "slurm";
  // The port comes from the job id, as under SLURM without MASTER_PORT: 15000 + last 4 digits.
  int port = 0;
  while (port < 15000 || port > 24999) port = free_port() % 10000 + 15000;
  const std::string job_id = "77" + std::to_string(port - 15000 + 10000).substr(1);
  const auto ranks = run_ranks(
      2, [&](int) { return finetune_args(out); },
      [&](int r) {
        return std::vector<std::string>{"SLURM_NTASKS=2",
                                        "SLURM_PROCID=" + std::to_string(r),
                                        "SLURM_LOCALID=" + std::to_string(r),
                                        "SLURM_NODEID=0",
                                        "SLURM_NNODES=1",
                                        "SLURM_NODELIST=localhost",
                                        "SLURM_JOB_ID=" + job_id};
      });
  expect_matches_single_run(ranks, out);
  EXPECT_NE(ranks[0].err.find("(slurm), rendezvous localhost:" + std::to_string(port)),
            std::string::npos)
      << ranks[0].err;
}

TEST(DistributedFinetune, TorchrunStyleVariablesLaunchTwoRanks) {
  SKIP_WITHOUT_GLOO();
  llm::test::TempDir dir;
  const auto out = dir.path() / "torchrun";
  const auto port = std::to_string(free_port());
  const auto ranks = run_ranks(
      2, [&](int) { return finetune_args(out); },
      [&](int r) {
        return std::vector<std::string>{"RANK=" + std::to_string(r), "WORLD_SIZE=2",
                                        "LOCAL_RANK=" + std::to_string(r), "MASTER_ADDR=127.0.0.1",
                                        "MASTER_PORT=" + port};
      });
  expect_matches_single_run(ranks, out);
}

TEST(DistributedFinetune, RendezvousTimeoutNamesTheMasterAndTheMissingRank) {
  SKIP_WITHOUT_GLOO();
  llm::test::TempDir dir;
  const auto port = std::to_string(free_port());
  const auto started = std::chrono::steady_clock::now();
  const auto result =
      run_llmhost(with(finetune_args(dir.path() / "out", 4, "2", "1", "2"),
                       {"--rank", "0", "--world_size", "2", "--master_port", port}));
  EXPECT_EQ(result.exit_code, 2) << result.err;
  EXPECT_NE(result.err.find("127.0.0.1:" + port), std::string::npos) << result.err;
  EXPECT_NE(result.err.find("rank(s) 1 of world size 2 never arrived"), std::string::npos)
      << result.err;
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(30));
}

TEST(DistributedFinetune, WorldSizeNotDividingTheGlobalBatchIsRefusedBeforeRendezvous) {
  llm::test::TempDir dir;
  const auto result =
      run_llmhost(with(finetune_args(dir.path() / "out"), {"--rank", "0", "--world_size", "3"}));
  EXPECT_EQ(result.exit_code, 2) << result.err;
  EXPECT_NE(result.err.find("--batch_size (4) must be divisible by the world size (3)"),
            std::string::npos)
      << result.err;
}

// A rank process we can kill: llmhost with stdout/stderr to files.
struct Spawned {
  pid_t pid = 0;
  fs::path err;
};

Spawned spawn_llmhost(const std::vector<std::string>& args, const fs::path& log_dir,
                      const std::string& name) {
  Spawned s;
  s.err = log_dir / (name + ".err");
  std::vector<std::string> argv_storage{LLMHOST_BINARY};
  argv_storage.insert(argv_storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_storage) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 2, s.err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  const int rc = posix_spawn(&s.pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  EXPECT_EQ(rc, 0);
  return s;
}

std::string slurp(const fs::path& file) {
  std::ifstream in(file);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(DistributedFinetune, AKilledRankMakesTheOtherFailWithAMessageThenResumeCompletes) {
  SKIP_WITHOUT_GLOO();
  llm::test::TempDir dir;
  const auto out = dir.path() / "killed";
  const int steps = 400;  // long enough to be killed mid-run
  const auto port = std::to_string(free_port());
  auto rank_args = [&](int r, bool resume) {
    auto args = with(finetune_args(out, steps, "0", "5"),
                     {"--rank", std::to_string(r), "--world_size", "2", "--master_port", port});
    if (resume) args.push_back("--resume");
    return args;
  };
  auto rank0 = spawn_llmhost(rank_args(0, false), dir.path(), "rank0");
  auto rank1 = spawn_llmhost(rank_args(1, false), dir.path(), "rank1");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (!fs::exists(out / "step-000010") && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(fs::exists(out / "step-000010")) << slurp(rank0.err);
  ::kill(rank1.pid, SIGKILL);
  const auto killed_at = std::chrono::steady_clock::now();
  int status = 0;
  ::waitpid(rank1.pid, &status, 0);
  ::waitpid(rank0.pid, &status, 0);
  const auto survivor_took = std::chrono::steady_clock::now() - killed_at;
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_NE(WEXITSTATUS(status), 0);
  EXPECT_LT(survivor_took, std::chrono::seconds(25)) << "bounded by --dist_timeout 20";
  const auto message = slurp(rank0.err);
  EXPECT_NE(message.find("rank 0: "), std::string::npos) << message;
  EXPECT_NE(message.find("failed: another rank exited or did not answer"), std::string::npos)
      << message;
  EXPECT_FALSE(fs::exists(out / "final"));

  const auto resumed = run_ranks(
      2, [&](int r) { return rank_args(r, true); }, [](int) { return std::vector<std::string>{}; });
  for (int r = 0; r < 2; ++r) ASSERT_EQ(resumed[r].exit_code, 0) << resumed[r].err;
  EXPECT_NE(resumed[0].err.find("resuming from"), std::string::npos) << resumed[0].err;
  EXPECT_TRUE(fs::exists(out / "final" / "adapter_model.safetensors"));
}

}  // namespace
