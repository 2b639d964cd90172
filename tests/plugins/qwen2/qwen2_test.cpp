// The qwen2 plugin against Hugging Face transformers and PEFT (tests/data/make_goldens_issue15.py):
// a random tiny Qwen2 with non-zero q/k/v biases, a head tied to the embedding (no lm_head.weight
// in the file), grouped-query attention, rope_theta 1e6, two EOS ids in generation_config.json and
// a byte-level tokenizer.json with Qwen2's split pattern.
#include <gtest/gtest.h>

#include "llm/adapter.hpp"
#include "llm/error.hpp"
#include "llm/tokenizer.hpp"
#include "sdk/nn/causal_lm_checks.hpp"

namespace llm::test {
namespace {

const std::string kModel = "tiny-qwen2";

Json golden() { return read_json_file(data_dir() / "golden" / (kModel + ".json")); }

torch::Tensor golden_tensor(const std::string& name) {
  SafetensorsFile file(data_dir() / "golden" / (kModel + "-logits.safetensors"));
  return file.tensor(name).clone();
}

std::string user_error_text(const std::filesystem::path& dir) {
  return user_error_of([&] { load_test_model(dir); });
}

// A copy of tiny-qwen2 with `edit` applied to its config.json.
template <typename Edit>
void edited_checkpoint(const std::filesystem::path& dir, Edit edit) {
  copy_checkpoint(data_dir() / kModel, dir);
  auto config = read_json_file(dir / "config.json");
  edit(config);
  write_json(dir / "config.json", config);
}

TEST(Qwen2, LogitsMatchTransformersWithin1e4) { expect_logits_match_golden(kModel); }
TEST(Qwen2, CachedGroupedQueryDecodeMatchesFullForward) {
  expect_cached_decode_matches_full_forward(kModel);
}
TEST(Qwen2, TransformersV5ConfigBuildsTheSameModel) { expect_v5_config_gives_same_logits(kModel); }
TEST(Qwen2, Bf16ForwardStaysNearFp32) { expect_bf16_forward_near_fp32(kModel); }
TEST(Qwen2, CudaMatchesTransformers) { expect_cuda_matches_golden(kModel); }
TEST(Qwen2, AdaptableLinearsNameEveryLinearLayer) {
  expect_adaptable_linears_cover_every_matrix(kModel);
}

TEST(Qwen2, GreedyGenerationReproducesTransformers) {
  const Json expected = golden();
  const auto prompt = expected["greedy_prompt"].get<std::vector<int64_t>>();
  const auto out = expected["greedy_out"].get<std::vector<int64_t>>();
  auto loaded = load_test_model(data_dir() / kModel);
  std::vector<int64_t> tokens = prompt;
  tokens.insert(tokens.end(), out.begin(), out.end());
  // Tie-aware: a differing token must be within fp32 rounding of the reference's choice.
  expect_greedy_tokens_match(*loaded.model, greedy(*loaded.model, prompt, 12), tokens);
}

TEST(Qwen2, BiasesOnQueryKeyValueOnlyAndTheHeadIsTheEmbedding) {
  ASSERT_FALSE(
      SafetensorsFile(data_dir() / kModel / "model.safetensors").contains("lm_head.weight"));
  auto loaded = load_test_model(data_dir() / kModel);
  EXPECT_EQ(loaded.family->name(), "qwen2");
  const auto params = loaded.model->named_parameters();
  for (const char* proj : {"q_proj", "k_proj", "v_proj"}) {
    const auto* bias = params.find(std::string("model.layers.1.self_attn.") + proj + ".bias");
    ASSERT_NE(bias, nullptr) << proj;
    EXPECT_GT(bias->abs().max().item<double>(), 0.0) << proj;
  }
  EXPECT_EQ(params.find("model.layers.1.self_attn.o_proj.bias"), nullptr);
  EXPECT_EQ(params.find("model.layers.1.mlp.up_proj.bias"), nullptr);
  EXPECT_EQ(params["lm_head.weight"].data_ptr(), params["model.embed_tokens.weight"].data_ptr());
  EXPECT_EQ(params["model.layers.0.self_attn.k_proj.weight"].size(0),
            loaded.config.num_kv_heads * loaded.config.head_dim);
  EXPECT_LT(loaded.config.num_kv_heads, loaded.config.num_heads);
  const auto settings = loaded.family->settings(loaded.config);
  EXPECT_EQ(settings["rope_theta"], 1000000.0);
  EXPECT_EQ(settings["tie_word_embeddings"], true);
  EXPECT_EQ(settings["qkv_bias"], true);
  EXPECT_EQ(settings["output_bias"], false);
}

TEST(Qwen2, EosIdsComeFromGenerationConfig) {
  const auto config = read_model_config(data_dir() / kModel);
  EXPECT_EQ(config.raw["eos_token_id"], 352);  // config.json names one
  EXPECT_EQ(config.eos_token_ids, golden()["eos_token_id"].get<std::vector<int64_t>>());
}

TEST(Qwen2, TokenizerIdsEqualTokenizersOnTheHardStrings) {
  const auto tokenizer = load_tokenizer(data_dir() / kModel);
  EXPECT_FALSE(tokenizer->adds_bos());  // Qwen2 adds no BOS
  const Json expected = golden();
  int checked = 0;
  for (const auto& c : expected["tokenizer_cases"]) {
    const auto text = c["text"].get<std::string>();
    EXPECT_EQ(tokenizer->encode(text), c["ids"].get<std::vector<int64_t>>()) << text;
    EXPECT_EQ(tokenizer->encode_for_model(text), c["ids_with_special"].get<std::vector<int64_t>>())
        << text;
    EXPECT_EQ(tokenizer->decode(c["ids"].get<std::vector<int64_t>>()), c["decoded"]) << text;
    ++checked;
  }
  EXPECT_GE(checked, 15);
  EXPECT_EQ(tokenizer->encode_for_model("The capital of France is"),
            expected["greedy_prompt"].get<std::vector<int64_t>>());
}

TEST(Qwen2, PeftAdapterOnAllSevenProjectionsReproducesPeftWithin1e4) {
  auto loaded = load_test_model(data_dir() / kModel);
  const auto lora = model_plugins().adapter("lora");
  lora->load(*loaded.model, data_dir() / "golden" / "tiny-qwen2-lora-adapter");
  int adapted = 0;
  for (const auto& layer : loaded.model->adaptable_linears())
    adapted += layer.linear->adapter() ? 1 : 0;
  EXPECT_EQ(adapted, 2 * 7);
  const auto ids = golden_tensor("input_ids");
  EXPECT_LE(max_abs_diff(forward_no_grad(*loaded.model, ids), golden_tensor("logits_lora")), 1e-4);
  // The adapter matters: the base logits are far from the adapted ones.
  EXPECT_GT(max_abs_diff(golden_tensor("logits"), golden_tensor("logits_lora")), 1e-2);
  lora->merge(*loaded.model);
  EXPECT_LE(max_abs_diff(forward_no_grad(*loaded.model, ids), golden_tensor("logits_merged")),
            1e-4);
}

TEST(Qwen2, LoraSwitchesTargetTheDeclaredRoles) {
  auto loaded = load_test_model(data_dir() / kModel);
  const auto lora = model_plugins().adapter("lora");
  lora->attach(*loaded.model,
               Json{{"lora_query", false}, {"lora_value", false}, {"lora_mlp", true}});
  std::vector<std::string> adapted;
  for (const auto& layer : loaded.model->adaptable_linears()) {
    if (layer.linear->adapter()) adapted.push_back(layer.name);
  }
  EXPECT_EQ(adapted, (std::vector<std::string>{
                         "model.layers.0.mlp.gate_proj", "model.layers.0.mlp.up_proj",
                         "model.layers.0.mlp.down_proj", "model.layers.1.mlp.gate_proj",
                         "model.layers.1.mlp.up_proj", "model.layers.1.mlp.down_proj"}));
}

// The head is the embedding's storage: merging a head adapter would change the input embedding
// too, so merge refuses (naming both) and leaves every weight as it was.
TEST(Qwen2, MergingAHeadAdapterIntoTheTiedEmbeddingIsRefused) {
  auto loaded = load_test_model(data_dir() / kModel);
  const auto lora = model_plugins().adapter("lora");
  lora->attach(*loaded.model, Json{{"lora_head", true}});
  torch::Tensor head;
  for (const auto& layer : loaded.model->adaptable_linears()) {
    if (layer.linear->adapter() && layer.name == "lm_head") head = layer.linear->weight;
  }
  ASSERT_TRUE(head.defined());
  const auto before = head.clone();
  const std::string message = user_error_of([&] { lora->merge(*loaded.model); });
  EXPECT_NE(message.find("lm_head"), std::string::npos) << message;
  EXPECT_NE(message.find("tied embeddings"), std::string::npos) << message;
  EXPECT_TRUE(torch::equal(head, before));
}

TEST(Qwen2, SlidingWindowIsAUserErrorNamingConfigJsonAndTheKey) {
  TempDir dir;
  edited_checkpoint(dir.path(), [](Json& c) { c["use_sliding_window"] = true; });
  const auto message = user_error_text(dir.path());
  EXPECT_NE(message.find("config.json"), std::string::npos) << message;
  EXPECT_NE(message.find("'use_sliding_window'"), std::string::npos) << message;
}

TEST(Qwen2, ScaledRopeAndUnknownActivationAreUserErrorsNamingConfigJson) {
  TempDir dir;
  edited_checkpoint(dir.path(), [](Json& c) {
    c["rope_scaling"] = {{"rope_type", "llama3"},
                         {"factor", 8.0},
                         {"low_freq_factor", 1.0},
                         {"high_freq_factor", 4.0}};
  });
  auto message = user_error_text(dir.path());
  EXPECT_NE(message.find("config.json: rope type 'llama3' is not supported by qwen2"),
            std::string::npos)
      << message;
  TempDir other;
  edited_checkpoint(other.path(), [](Json& c) { c["hidden_act"] = "quick_gelu_x"; });
  message = user_error_text(other.path());
  EXPECT_NE(message.find("config.json: hidden_act 'quick_gelu_x'"), std::string::npos) << message;
}

TEST(Qwen2, MissingTiedEmbeddingIsAUserErrorNamingTheTensor) {
  TempDir dir;
  copy_checkpoint(data_dir() / kModel, dir.path());
  rewrite_weights(data_dir() / kModel / "model.safetensors", dir.path(), [](auto& tensors) {
    tensors.erase(
        std::remove_if(tensors.begin(), tensors.end(),
                       [](const auto& t) { return t.first == "model.embed_tokens.weight"; }),
        tensors.end());
  });
  const auto message = user_error_text(dir.path());
  EXPECT_NE(message.find("model.embed_tokens.weight"), std::string::npos) << message;
}

}  // namespace
}  // namespace llm::test
