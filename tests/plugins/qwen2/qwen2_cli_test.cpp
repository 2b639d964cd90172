// Qwen2 through the real llmhost binary: list, generate, prepare -> finetune (LoRA) -> merge ->
// generate and evaluate, and a PEFT adapter merged and evaluated unmerged.
#include <gtest/gtest.h>

#include <algorithm>

#include "llm/adapter.hpp"
#include "llm/json_file.hpp"
#include "sdk/nn/causal_lm_checks.hpp"

namespace llm::test {
namespace {

namespace fs = std::filesystem;

const std::string kModel = "tiny-qwen2";
fs::path model_dir() { return data_dir() / kModel; }
fs::path golden_adapter() { return data_dir() / "golden" / "tiny-qwen2-lora-adapter"; }

Json run_json(const std::vector<std::string>& args) {
  auto with_format = args;
  with_format.insert(with_format.end(), {"--format", "json"});
  const auto r = run_llmhost(with_format);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return r.exit_code == 0 ? Json::parse(r.out) : Json::object();
}

Json generate(const fs::path& checkpoint, const std::vector<std::string>& extra = {}) {
  std::vector<std::string> args = {"--task",           "generate",
                                   "--checkpoint_dir", checkpoint.string(),
                                   "--prompt",         "The capital of France is",
                                   "--temperature",    "0",
                                   "--max_new_tokens", "12",
                                   "--ignore_eos"};
  args.insert(args.end(), extra.begin(), extra.end());
  return run_json(args);
}

double wikitext_perplexity(const fs::path& checkpoint, const std::vector<std::string>& extra = {}) {
  std::vector<std::string> args = {
      "--task",       "evaluate",   "--checkpoint_dir", checkpoint.string(),
      "--eval_tasks", "[wikitext]", "--data_dir",       (data_dir() / "eval-data").string(),
      "--max_length", "64"};
  args.insert(args.end(), extra.begin(), extra.end());
  const auto out = run_json(args);
  return out["results"]["wikitext"]["word_perplexity"].get<double>();
}

torch::Tensor golden_tensor(const std::string& name) {
  SafetensorsFile file(data_dir() / "golden" / (kModel + "-logits.safetensors"));
  return file.tensor(name).clone();
}

TEST(Qwen2Cli, ListShowsTheFamilyWithItsModelTypeAndArchitecture) {
  const auto out = run_json({"--task", "list"});
  bool found = false;
  for (const auto& plugin : out["plugins"]) {
    if (plugin["name"] != "qwen2") continue;
    found = true;
    EXPECT_EQ(plugin["kind"], "model");
    ASSERT_EQ(plugin["families"].size(), 1u) << plugin.dump();
    EXPECT_EQ(plugin["families"][0]["model_types"], Json::array({"qwen2"}));
    EXPECT_EQ(plugin["families"][0]["architectures"], Json::array({"Qwen2ForCausalLM"}));
  }
  EXPECT_TRUE(found) << out.dump();
}

TEST(Qwen2Cli, GreedyGenerateReproducesTransformers) {
  const Json golden = read_json_file(data_dir() / "golden" / (kModel + ".json"));
  const auto out = generate(model_dir());
  EXPECT_EQ(out["prompt_ids"], golden["greedy_prompt"]);
  auto expected = golden["greedy_prompt"].get<std::vector<int64_t>>();
  for (const auto& id : golden["greedy_out"]) expected.push_back(id.get<int64_t>());
  auto loaded = load_test_model(model_dir());
  expect_greedy_tokens_match(*loaded.model, out["output_ids"].get<std::vector<int64_t>>(),
                             expected);
}

TEST(Qwen2Cli, MergedPeftAdapterReproducesPeftMergedLogitsAndKeepsTheBaseNames) {
  TempDir dir;
  const auto merged = dir.path() / "merged";
  const auto r =
      run_llmhost({"--task", "merge", "--checkpoint_dir", model_dir().string(), "--lora_path",
                   golden_adapter().string(), "--out_dir", merged.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto loaded = load_test_model(merged);
  EXPECT_LE(max_abs_diff(forward_no_grad(*loaded.model, golden_tensor("input_ids")),
                         golden_tensor("logits_merged")),
            1e-4);
  EXPECT_EQ(read_json_file(merged / "config.json"), read_json_file(model_dir() / "config.json"));
  // Tied: the head is the embedding, so the file has no lm_head.weight, as the base has none.
  auto sorted_names = [](const fs::path& checkpoint) {
    auto names = SafetensorsCheckpoint::open(checkpoint).names();
    std::sort(names.begin(), names.end());
    return names;
  };
  EXPECT_EQ(sorted_names(merged), sorted_names(model_dir()));
  EXPECT_EQ(read_file_bytes(merged / "tokenizer.json"),
            read_file_bytes(model_dir() / "tokenizer.json"));
  EXPECT_EQ(read_file_bytes(merged / "generation_config.json"),
            read_file_bytes(model_dir() / "generation_config.json"));
  // Evaluating the base with the adapter unmerged scores as the merged model does.
  const double unmerged =
      wikitext_perplexity(model_dir(), {"--lora_path", golden_adapter().string()});
  const double base = wikitext_perplexity(model_dir());
  EXPECT_NEAR(wikitext_perplexity(merged), unmerged, 1e-4 * unmerged);
  EXPECT_GT(std::abs(base - unmerged), 1e-3 * base) << "the adapter changes the score";
}

// prepare -> finetune -> merge -> generate on the tiny Qwen2, q/k/v/o + MLP adapted.
TEST(Qwen2Cli, FinetuneThenMergeThenGenerate) {
  TempDir dir;
  const auto data = dir.path() / "data";
  const auto prepare =
      run_llmhost({"--task", "prepare", "--plugin", "dolly", "--data_file",
                   (data_dir() / "datasets" / "dolly-sample.jsonl").string(), "--checkpoint_dir",
                   model_dir().string(), "--destination_dir", data.string()});
  ASSERT_EQ(prepare.exit_code, 0) << prepare.err;
  const auto run = dir.path() / "run";
  const auto summary =
      run_json({"--task",       "finetune",    "--plugin",           "lora",
                "--data_dir",   data.string(), "--checkpoint_dir",   model_dir().string(),
                "--out_dir",    run.string(),  "--learning_rate",    "1e-2",
                "--batch_size", "4",           "--micro_batch_size", "4",
                "--max_steps",  "6",           "--warmup_steps",     "1",
                "--lora_key",   "true",        "--lora_projection",  "true",
                "--lora_mlp",   "true",        "--eval_interval",    "0",
                "--eval_iters", "2",           "--save_interval",    "0"});
  ASSERT_TRUE(summary["final_val_loss"].is_number()) << summary.dump();
  // Measured: 6.6 -> 3.8.
  EXPECT_LT(summary["final_val_loss"].get<double>(), summary["initial_val_loss"].get<double>());
  const auto adapter = run / "final";
  const auto config = read_json_file(adapter / "adapter_config.json");
  EXPECT_EQ(config["target_modules"], Json::array({"down_proj", "gate_proj", "k_proj", "o_proj",
                                                   "q_proj", "up_proj", "v_proj"}));

  // Merging folds the trained adapter in: the merged model's logits equal base + adapter.
  const auto merged = dir.path() / "merged";
  const auto r = run_llmhost({"--task", "merge", "--checkpoint_dir", model_dir().string(),
                              "--lora_path", adapter.string(), "--out_dir", merged.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto with_adapter = load_test_model(model_dir());
  model_plugins().adapter("lora")->load(*with_adapter.model, adapter);
  auto merged_model = load_test_model(merged);
  const auto ids = golden_tensor("input_ids");
  EXPECT_LE(max_abs_diff(forward_no_grad(*merged_model.model, ids),
                         forward_no_grad(*with_adapter.model, ids)),
            1e-4);

  const auto unmerged = generate(model_dir(), {"--lora_path", adapter.string()});
  const auto from_merged = generate(merged);
  EXPECT_EQ(from_merged["prompt_ids"], unmerged["prompt_ids"]);
  expect_greedy_tokens_match(*merged_model.model,
                             from_merged["output_ids"].get<std::vector<int64_t>>(),
                             unmerged["output_ids"].get<std::vector<int64_t>>());
}

}  // namespace
}  // namespace llm::test
