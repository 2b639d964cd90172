// A Llama-3-style checkpoint (llama3 RoPE scaling, byte-level tokenizer.json with Llama 3's split
// pattern and no tokenizer.model, BOS from the post-processor, two EOS ids) against transformers.
#include <gtest/gtest.h>

#include <algorithm>

#include "llm/generation.hpp"
#include "llm/model_config.hpp"
#include "llm/nn/attention.hpp"
#include "llm/tokenizer.hpp"
#include "sdk/nn/causal_lm_checks.hpp"

namespace llm::test {
namespace {

const std::string kModel = "tiny-llama3";

Json golden() { return read_json_file(data_dir() / "golden" / (kModel + ".json")); }

struct Llama3Logits {
  torch::Tensor input_ids;
  torch::Tensor logits;
};

Llama3Logits llama3_logits() {
  SafetensorsFile file(data_dir() / "golden" / (kModel + "-logits.safetensors"));
  return {file.tensor("input_ids").clone(), file.tensor("logits").clone()};
}

TEST(Llama3, ConfigReadsLlama3RopeScalingAndBothEosIds) {
  auto loaded = load_test_model(data_dir() / kModel);
  const Json expected = golden();
  EXPECT_EQ(loaded.family->name(), "llama");
  EXPECT_EQ(rope_scaling_of(loaded.config).type, "llama3");
  EXPECT_EQ(rope_scaling_of(loaded.config).factor,
            expected["rope_scaling"]["factor"].get<double>());
  EXPECT_EQ(rope_scaling_of(loaded.config).original_max_position_embeddings,
            expected["rope_scaling"]["original_max_position_embeddings"].get<double>());
  EXPECT_EQ(loaded.family->settings(loaded.config)["rope_theta"], expected["rope_theta"]);
  EXPECT_EQ(loaded.config.eos_token_ids, expected["eos_token_id"].get<std::vector<int64_t>>());
  EXPECT_EQ(loaded.config.eos_token_ids.size(), 2u);
}

TEST(Llama3, InverseFrequenciesEqualTransformers) {
  const Json expected = golden();
  const auto config = read_model_config(data_dir() / kModel);
  const auto rotary = read_rotary_config(config, 10000.0, 1.0);
  ASSERT_EQ(rotary.rotary_dim, config.head_dim);
  const auto ours = rope_inverse_frequencies(rotary.rotary_dim, rotary.theta, rotary.scaling);
  const auto theirs = expected["inv_freq_transformers"].get<std::vector<double>>();
  ASSERT_EQ(ours.numel(), static_cast<int64_t>(theirs.size()));
  for (size_t i = 0; i < theirs.size(); ++i) {
    // Both fp32 from the same operations: equal up to one rounding.
    EXPECT_NEAR(ours[static_cast<int64_t>(i)].item<double>(), theirs[i], 2e-7 * theirs[i]) << i;
  }
}

TEST(Llama3, LogitsMatchTransformersWithin1e4) {
  const auto golden_logits = llama3_logits();
  auto loaded = load_test_model(data_dir() / kModel);
  const auto logits = forward_no_grad(*loaded.model, golden_logits.input_ids);
  ASSERT_EQ(logits.sizes(), golden_logits.logits.sizes());
  EXPECT_LE(max_abs_diff(logits, golden_logits.logits), 1e-4);
}

TEST(Llama3, TransformersV5ConfigBuildsTheSameModel) {
  const auto golden_logits = llama3_logits();
  TempDir dir;
  copy_checkpoint(data_dir() / kModel, dir.path());
  std::filesystem::copy_file(data_dir() / "golden" / "config-v5-style" / (kModel + ".json"),
                             dir.path() / "config.json",
                             std::filesystem::copy_options::overwrite_existing);
  auto v5 = load_test_model(dir.path());
  EXPECT_EQ(rope_scaling_of(v5.config).type, "llama3");
  EXPECT_LE(max_abs_diff(forward_no_grad(*v5.model, golden_logits.input_ids), golden_logits.logits),
            1e-4);
}

TEST(Llama3, GreedyGenerationReproducesTransformers) {
  const Json expected = golden();
  const auto prompt = expected["greedy_prompt"].get<std::vector<int64_t>>();
  const auto out = expected["greedy_out"].get<std::vector<int64_t>>();
  auto loaded = load_test_model(data_dir() / kModel);
  std::vector<int64_t> expected_tokens = prompt;
  expected_tokens.insert(expected_tokens.end(), out.begin(), out.end());
  // Tie-aware: a differing token must be within fp32 rounding of the reference's choice.
  expect_greedy_tokens_match(*loaded.model, greedy(*loaded.model, prompt, 12), expected_tokens);
}

TEST(Llama3, GenerationStopsAtEitherEosId) {
  // generation_config.json lists two EOS ids; make the second one a token greedy decoding emits.
  const Json expected = golden();
  const auto prompt = expected["greedy_prompt"].get<std::vector<int64_t>>();
  const auto out = expected["greedy_out"].get<std::vector<int64_t>>();
  TempDir dir;
  copy_checkpoint(data_dir() / kModel, dir.path());
  auto generation = read_json_file(dir.path() / "generation_config.json");
  const int64_t stop = out[3];
  generation["eos_token_id"] = {expected["eos_token_id"][0], stop};
  write_json(dir.path() / "generation_config.json", generation);
  auto loaded = load_test_model(dir.path());
  GenerationOptions options;
  options.max_new_tokens = 12;
  options.sampling.temperature = 0;
  const auto result = generate(*loaded.model, prompt, options);
  EXPECT_TRUE(result.stopped_at_eos);
  const auto first_stop = std::find(out.begin(), out.end(), stop) - out.begin();
  EXPECT_EQ(result.new_tokens, first_stop + 1);
}

TEST(Llama3, TokenizerJsonAloneAddsBeginOfTextAsItsPostProcessorSays) {
  // Ids of every hard string: tests/sdk/tokenizer/tokenizer_byte_level_split_golden_test.cpp.
  ASSERT_FALSE(std::filesystem::exists(data_dir() / kModel / "tokenizer.model"));
  const auto tokenizer = load_tokenizer(data_dir() / kModel);
  const Json expected = golden();
  EXPECT_TRUE(tokenizer->adds_bos());
  EXPECT_EQ(tokenizer->bos_id(), expected["bos_token_id"].get<int64_t>());
  EXPECT_EQ(tokenizer->encode_for_model("The capital of France is"),
            expected["greedy_prompt"].get<std::vector<int64_t>>());
}

// PEFT's own adapter (tests/data/make_llama3_peft_golden.py: r 4 on all seven projections, random
// A and B) applied and merged by llmhost, against PEFT's logits.
TEST(Llama3, PeftAdapterOnAllSevenProjectionsReproducesPeftWithin1e4) {
  SafetensorsFile goldens(data_dir() / "golden" / (kModel + "-lora-logits.safetensors"));
  const auto golden_of = [&](const char* name) { return goldens.tensor(name).clone(); };
  auto loaded = load_test_model(data_dir() / kModel);
  const auto lora = model_plugins().adapter("lora");
  lora->load(*loaded.model, data_dir() / "golden" / (kModel + "-lora-adapter"));
  int adapted = 0;
  for (const auto& layer : loaded.model->adaptable_linears())
    adapted += layer.linear->adapter() ? 1 : 0;
  EXPECT_EQ(adapted, 2 * 7);
  const auto ids = golden_of("input_ids");
  ASSERT_TRUE(torch::equal(ids, llama3_logits().input_ids));
  EXPECT_LE(max_abs_diff(forward_no_grad(*loaded.model, ids), golden_of("logits_lora")), 1e-4);
  // The adapter matters: the base logits are far from the adapted ones.
  EXPECT_GT(max_abs_diff(llama3_logits().logits, golden_of("logits_lora")), 1e-2);
  lora->merge(*loaded.model);
  EXPECT_LE(max_abs_diff(forward_no_grad(*loaded.model, ids), golden_of("logits_merged")), 1e-4);
}

}  // namespace
}  // namespace llm::test
