#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>
#include <iterator>
#include <set>

#include "llm/json_file.hpp"
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

std::string config_dtype_name(torch::ScalarType dtype) {
  switch (dtype) {
    case torch::kBFloat16:
      return "bfloat16";
    case torch::kHalf:
      return "float16";
    default:
      return "float32";
  }
}

// What transformers' from_pretrained reads: the same tensor names, shapes and dtypes as the base
// (no LoRA leftovers, nothing renamed), safetensors metadata format "pt", a config whose dtype
// names the stored dtype, and the tokenizer and generation files unchanged.
class MergedDirectory : public ::testing::TestWithParam<const char*> {};

TEST_P(MergedDirectory, HasEverythingTransformersLoadsUnderTheBaseNames) {
  const std::string model = GetParam();
  llm::test::TempDir dir;
  const auto out = dir.path() / "merged";
  const auto result = merge(model, model, out);
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const fs::path base_dir = llm::test::data_dir() / model;

  const llm::SafetensorsFile base(base_dir / "model.safetensors");
  const llm::SafetensorsFile merged(out / "model.safetensors");
  std::set<std::string> base_names, merged_names;
  for (const auto& info : base.tensors()) base_names.insert(info.name);
  for (const auto& info : merged.tensors()) merged_names.insert(info.name);
  EXPECT_EQ(merged_names, base_names);
  for (const auto& info : base.tensors()) {
    if (!merged.contains(info.name)) continue;
    EXPECT_EQ(merged.info(info.name).dtype, info.dtype) << info.name;
    EXPECT_EQ(merged.info(info.name).shape, info.shape) << info.name;
  }
  ASSERT_TRUE(merged.metadata().count("format"));
  EXPECT_EQ(merged.metadata().at("format"), "pt");

  const auto config = llm::read_json_file(out / "config.json");
  const std::string dtype = config.contains("dtype") ? config.at("dtype").get<std::string>()
                                                     : config.at("torch_dtype").get<std::string>();
  EXPECT_EQ(dtype, config_dtype_name(merged.tensors().front().dtype));
  EXPECT_EQ(config, llm::read_json_file(base_dir / "config.json"));

  for (const char* file :
       {"generation_config.json", "tokenizer_config.json", "tokenizer.json", "tokenizer.model"}) {
    if (!fs::exists(base_dir / file)) continue;
    ASSERT_TRUE(fs::exists(out / file)) << file;
    EXPECT_EQ(llm::test::read_file_bytes(out / file), llm::test::read_file_bytes(base_dir / file))
        << file;
  }
}

INSTANTIATE_TEST_SUITE_P(BothModels, MergedDirectory,
                         ::testing::Values("tiny-pythia", "tiny-llama"));

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
