// kill -9 at named points of a finetune (LLMHOST_TEST_KILL_AT, see sdk/src/train/trainer.cpp),
// then --resume: every checkpoint left behind loads, and the final adapter equals the adapter of
// an uninterrupted run.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <csignal>
#include <string>
#include <vector>

#include "llm/atomic_file.hpp"
#include "llm/json_file.hpp"
#include "llm/safetensors.hpp"
#include "support/test_support.hpp"

namespace {

namespace fs = std::filesystem;
using llm::test::run_llmhost;

constexpr int kKilledBySigkill = 128 + SIGKILL;

fs::path model_dir() { return llm::test::data_dir() / "tiny-pythia-trained"; }

// The Dolly sample prepared once for the whole suite.
const fs::path& prepared_data() {
  static llm::test::TempDir dir;
  static const fs::path data = [] {
    const auto out = dir.path() / "data";
    const auto result = run_llmhost(
        {"--task", "prepare", "--plugin", "dolly", "--data_file",
         (llm::test::data_dir() / "datasets/dolly-sample.jsonl").string(), "--checkpoint_dir",
         model_dir().string(), "--destination_dir", out.string(), "--max_seq_length", "96"});
    EXPECT_EQ(result.exit_code, 0) << result.err;
    return out;
  }();
  return data;
}

// 4 steps, a checkpoint after every step, dropout on (the resumed RNG must match too).
llm::test::CommandResult finetune(const fs::path& out_dir, bool resume,
                                  const std::string& kill_at = "") {
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
                                   "--max_steps",
                                   "4",
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
                                   "--lora_dropout",
                                   "0.05",
                                   "--seed",
                                   "3"};
  if (resume) args.push_back("--resume");
  std::vector<std::string> env;
  if (!kill_at.empty()) env.push_back("LLMHOST_TEST_KILL_AT=" + kill_at);
  return run_llmhost(args, env);
}

// Every visible checkpoint directory must be complete and loadable: a kill never leaves half of
// one.
void expect_visible_checkpoints_load(const fs::path& out_dir) {
  int visible = 0;
  for (const auto& entry : fs::directory_iterator(out_dir)) {
    const auto name = entry.path().filename().string();
    if (!entry.is_directory() || name[0] == '.') continue;
    ++visible;
    SCOPED_TRACE(entry.path().string());
    EXPECT_NO_THROW(llm::read_json_file(entry.path() / "trainer_state.json"));
    EXPECT_NO_THROW(llm::SafetensorsFile(entry.path() / "trainer_state.safetensors"));
    EXPECT_NO_THROW(llm::read_json_file(entry.path() / "adapter_config.json"));
    EXPECT_NO_THROW(llm::SafetensorsFile(entry.path() / "adapter_model.safetensors"));
  }
  EXPECT_GT(visible, 0) << "no checkpoint survived in " << out_dir;
}

// The resumed run took the directory and removed what the killed one left under temporary names.
void expect_no_temporaries(const fs::path& out_dir) {
  for (const auto& entry : fs::recursive_directory_iterator(out_dir)) {
    EXPECT_FALSE(llm::temporary_owner(entry.path().filename().string()))
        << "left behind: " << entry.path();
  }
}

void expect_same_adapter(const fs::path& expected_dir, const fs::path& actual_dir) {
  const llm::SafetensorsFile expected(expected_dir / "adapter_model.safetensors");
  const llm::SafetensorsFile actual(actual_dir / "adapter_model.safetensors");
  ASSERT_EQ(expected.tensors().size(), actual.tensors().size());
  ASSERT_GT(expected.tensors().size(), 0u);
  for (const auto& info : expected.tensors()) {
    ASSERT_TRUE(actual.contains(info.name)) << info.name;
    EXPECT_TRUE(torch::equal(expected.tensor(info.name), actual.tensor(info.name))) << info.name;
  }
}

const fs::path& uninterrupted_final() {
  static llm::test::TempDir dir;
  static const fs::path final_dir = [] {
    const auto result = finetune(dir.path() / "run", false);
    EXPECT_EQ(result.exit_code, 0) << result.err;
    return dir.path() / "run" / "final";
  }();
  return final_dir;
}

void kill_then_resume(const std::string& kill_at, const std::string& expected_resume_step) {
  ASSERT_TRUE(fs::exists(uninterrupted_final() / "adapter_model.safetensors"));
  llm::test::TempDir dir;
  const auto out_dir = dir.path() / "run";
  const auto killed = finetune(out_dir, false, kill_at);
  ASSERT_EQ(killed.exit_code, kKilledBySigkill) << "the kill point never fired\n" << killed.err;
  EXPECT_FALSE(fs::exists(out_dir / "final"));
  expect_visible_checkpoints_load(out_dir);

  const auto resumed = finetune(out_dir, true);
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_NE(resumed.err.find("at step " + expected_resume_step), std::string::npos) << resumed.err;
  expect_visible_checkpoints_load(out_dir);
  expect_no_temporaries(out_dir);
  expect_same_adapter(uninterrupted_final(), out_dir / "final");
}

TEST(CrashSafety, KilledDuringAStepResumesFromThePreviousCheckpointToTheSameAdapter) {
  kill_then_resume("step:3", "2");
}

TEST(CrashSafety, KilledWhileWritingACheckpointKeepsThePreviousOneAndResumesToTheSameAdapter) {
  kill_then_resume("checkpoint-data:2", "1");
}

TEST(CrashSafety, KilledBeforeTheFinalCheckpointRenameResumesToTheSameAdapter) {
  kill_then_resume("checkpoint-rename:4", "3");
}

TEST(CrashSafety, KilledTwiceInARowStillResumesToTheSameAdapter) {
  ASSERT_TRUE(fs::exists(uninterrupted_final() / "adapter_model.safetensors"));
  llm::test::TempDir dir;
  const auto out_dir = dir.path() / "run";
  ASSERT_EQ(finetune(out_dir, false, "checkpoint-rename:2").exit_code, kKilledBySigkill);
  ASSERT_EQ(finetune(out_dir, true, "step:3").exit_code, kKilledBySigkill);
  expect_visible_checkpoints_load(out_dir);
  const auto resumed = finetune(out_dir, true);
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  expect_no_temporaries(out_dir);
  expect_same_adapter(uninterrupted_final(), out_dir / "final");
}

}  // namespace
