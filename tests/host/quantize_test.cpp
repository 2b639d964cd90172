// --quantize through the real binary: QLoRA-style finetuning on the untrained tiny model, then
// generate, evaluate and merge over the NF4 base with the adapter it wrote; bad input is exit 2.
#include <gtest/gtest.h>

#include "llm/json_file.hpp"
#include "support/test_support.hpp"

namespace {

namespace fs = std::filesystem;
using llm::test::data_dir;
using llm::test::run_llmhost;

struct QuantizedRun {
  llm::test::TempDir dir;
  llm::test::CommandResult prepare, finetune;
  llm::Json summary;
  fs::path adapter() const { return dir.path() / "run" / "final"; }
};

// prepare -> finetune --quantize nf4 on tests/data/tiny-pythia (random weights), 20 steps of 8
// Dolly samples at lr 1e-2, LoRA on q, v, projection and MLP; run once for the tests below.
const QuantizedRun& quantized_run() {
  static QuantizedRun r;
  static const bool done = [] {
    const fs::path model = data_dir() / "tiny-pythia";
    const auto data = r.dir.path() / "data";
    r.prepare =
        run_llmhost({"--task", "prepare", "--plugin", "dolly", "--data_file",
                     (data_dir() / "datasets/dolly-sample.jsonl").string(), "--checkpoint_dir",
                     model.string(), "--destination_dir", data.string()});
    if (r.prepare.exit_code != 0) return true;
    r.finetune = run_llmhost({"--task",
                              "finetune",
                              "--plugin",
                              "lora",
                              "--quantize",
                              "nf4",
                              "--data_dir",
                              data.string(),
                              "--checkpoint_dir",
                              model.string(),
                              "--out_dir",
                              (r.dir.path() / "run").string(),
                              "--format",
                              "json",
                              "--learning_rate",
                              "1e-2",
                              "--batch_size",
                              "8",
                              "--micro_batch_size",
                              "8",
                              "--max_steps",
                              "20",
                              "--warmup_steps",
                              "2",
                              "--lora_projection",
                              "true",
                              "--lora_mlp",
                              "true",
                              "--eval_interval",
                              "0",
                              "--eval_iters",
                              "5",
                              "--save_interval",
                              "0"});
    if (r.finetune.exit_code == 0) r.summary = llm::Json::parse(r.finetune.out);
    return true;
  }();
  (void)done;
  return r;
}

TEST(QuantizeCli, FinetuneOverNf4BaseLowersValidationLossByTenPercentIn20Steps) {
  const auto& run = quantized_run();
  ASSERT_EQ(run.prepare.exit_code, 0) << run.prepare.err;
  ASSERT_EQ(run.finetune.exit_code, 0) << run.finetune.err;
  const double before = run.summary.at("initial_val_loss").get<double>();
  const double after = run.summary.at("final_val_loss").get<double>();
  EXPECT_LT(after, 0.9 * before) << "val loss " << before << " -> " << after;
  EXPECT_EQ(run.summary.at("quantize"), "nf4");
  EXPECT_NE(run.finetune.err.find("--quantize nf4: 8 frozen Linear weights"), std::string::npos)
      << run.finetune.err;
  EXPECT_TRUE(fs::exists(run.adapter() / "adapter_model.safetensors"));
}

TEST(QuantizeCli, GenerateWithNf4AndTheAdapterRuns) {
  const auto& run = quantized_run();
  ASSERT_EQ(run.finetune.exit_code, 0) << run.finetune.err;
  const auto r = run_llmhost(
      {"--task", "generate", "--checkpoint_dir", (data_dir() / "tiny-pythia").string(),
       "--quantize", "bnb.nf4", "--lora_path", run.adapter().string(), "--prompt", "Tell me",
       "--temperature", "0", "--max_new_tokens", "6", "--ignore_eos", "--format", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(llm::Json::parse(r.out).at("new_tokens"), 6);
}

TEST(QuantizeCli, EvaluateWithNf4DqAndTheAdapterRuns) {
  const auto& run = quantized_run();
  ASSERT_EQ(run.finetune.exit_code, 0) << run.finetune.err;
  const auto r =
      run_llmhost({"--task", "evaluate", "--checkpoint_dir", (data_dir() / "tiny-pythia").string(),
                   "--quantize", "bnb.nf4-dq", "--lora_path", run.adapter().string(),
                   "--eval_tasks", "[arithmetic_1dc]", "--data_dir",
                   (data_dir() / "eval-data").string(), "--limit", "8", "--format", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(llm::Json::parse(r.out).at("results").contains("arithmetic_1dc")) << r.out;
}

TEST(QuantizeCli, MergeSaysItMergesIntoTheDequantizedWeights) {
  const auto& run = quantized_run();
  ASSERT_EQ(run.finetune.exit_code, 0) << run.finetune.err;
  llm::test::TempDir out;
  const auto r =
      run_llmhost({"--task", "merge", "--checkpoint_dir", (data_dir() / "tiny-pythia").string(),
                   "--quantize", "nf4", "--lora_path", run.adapter().string(), "--out_dir",
                   (out.path() / "merged").string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("DEQUANTIZED"), std::string::npos) << r.err;
  EXPECT_TRUE(fs::exists(out.path() / "merged" / "model.safetensors"));
}

TEST(QuantizeCli, UnknownSchemeIsExitTwoNamingTheFlag) {
  const auto r =
      run_llmhost({"--task", "generate", "--checkpoint_dir", (data_dir() / "tiny-pythia").string(),
                   "--quantize", "int3", "--prompt", "hi"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--quantize 'int3'"), std::string::npos) << r.err;
}

TEST(QuantizeCli, Nf4OnAModelWithIndivisibleInFeaturesIsExitTwo) {
  // tiny-llama's MLP is 172 wide: down_proj's in_features is not a multiple of 64.
  const auto r =
      run_llmhost({"--task", "generate", "--checkpoint_dir", (data_dir() / "tiny-llama").string(),
                   "--quantize", "nf4", "--prompt", "hi"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("in_features 172, not a multiple of the NF4 block size 64"),
            std::string::npos)
      << r.err;
}

}  // namespace
