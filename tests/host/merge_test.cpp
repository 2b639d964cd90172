#include <gtest/gtest.h>
#include <torch/torch.h>

#include "llm/safetensors.hpp"
#include "plugin_registry.hpp"
#include "support/test_support.hpp"

namespace {

namespace fs = std::filesystem;
using llm::test::run_llmhost;

llm::test::CommandResult merge(const std::string& base, const std::string& adapter,
                               const fs::path& out) {
  return run_llmhost({"--task", "merge", "--checkpoint_dir",
                      (llm::test::data_dir() / base).string(), "--lora_path",
                      (llm::test::data_dir() / "golden" / (adapter + "-lora-adapter")).string(),
                      "--out_dir", out.string()});
}

TEST(MergeTask, WritesACompleteCheckpointThatReproducesPeftMergedLogits) {
  llm::test::TempDir dir;
  const auto out = dir.path() / "merged";
  const auto result = merge("tiny-pythia", "tiny-pythia", out);
  ASSERT_EQ(result.exit_code, 0) << result.err;
  for (const char* file : {"config.json", "model.safetensors", "tokenizer.json",
                           "tokenizer_config.json", "generation_config.json"}) {
    EXPECT_TRUE(fs::exists(out / file)) << file;
  }
  llmhost::PluginRegistry registry;
  registry.load_directories({llm::test::plugin_dir()});
  auto merged = llmhost::load_model(registry, out, torch::kCPU, torch::kFloat, false);
  const llm::SafetensorsFile golden(llm::test::data_dir() /
                                    "golden/tiny-pythia-logits.safetensors");
  torch::NoGradGuard no_grad;
  const auto logits = merged.model->forward(golden.tensor("input_ids").to(torch::kInt64));
  EXPECT_LE((logits - golden.tensor("logits_merged")).abs().max().item<double>(), 1e-4);
  for (const auto& entry : fs::directory_iterator(dir.path())) {
    EXPECT_EQ(entry.path().filename(), "merged") << "no temporary directory left behind";
  }
}

TEST(MergeTask, AdapterTargetingMissingModulesExitsTwo) {
  llm::test::TempDir dir;
  const auto result = merge("tiny-pythia", "tiny-llama", dir.path() / "merged");
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_NE(result.err.find("match no layer"), std::string::npos) << result.err;
  EXPECT_FALSE(fs::exists(dir.path() / "merged"));
}

TEST(MergeTask, AdapterOfAnotherArchitectureExitsTwo) {
  llm::test::TempDir dir;
  const auto result = merge("tiny-pythia-trained", "tiny-pythia", dir.path() / "merged");
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_NE(result.err.find("has shape"), std::string::npos) << result.err;
}

}  // namespace
