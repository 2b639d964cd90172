#include <gtest/gtest.h>

#include "llm/error.hpp"
#include "sdk/nn/causal_lm_checks.hpp"

namespace llm::test {
namespace {

const std::string kModel = "tiny-llama";

TEST(Llama, LogitsMatchTransformersWithin1e4) { expect_logits_match_golden(kModel); }
TEST(Llama, MaskedLossMatchesTransformers) { expect_masked_loss_matches_golden(kModel); }
TEST(Llama, GreedyGenerationReproducesTransformers) { expect_greedy_matches_golden(kModel); }
TEST(Llama, CachedGroupedQueryDecodeMatchesFullForward) {
  expect_cached_decode_matches_full_forward(kModel);
}
TEST(Llama, TransformersV5ConfigBuildsTheSameModel) { expect_v5_config_gives_same_logits(kModel); }
TEST(Llama, Bf16ForwardStaysNearFp32) { expect_bf16_forward_near_fp32(kModel); }
TEST(Llama, CudaMatchesTransformers) { expect_cuda_matches_golden(kModel); }
TEST(Llama, AdaptableLinearsNameEveryLinearLayer) {
  expect_adaptable_linears_cover_every_matrix(kModel);
}

TEST(Llama, GroupedQueryCheckpointBuildsFewerKeyValueHeads) {
  auto loaded = load_test_model(data_dir() / kModel);
  EXPECT_EQ(loaded.family->name(), "llama");
  EXPECT_EQ(loaded.config.num_kv_heads, 2);
  const auto params = loaded.model->named_parameters();
  EXPECT_EQ(params["model.layers.0.self_attn.k_proj.weight"].size(0), 2 * loaded.config.head_dim);
  EXPECT_EQ(params["model.layers.0.self_attn.q_proj.weight"].size(0), 4 * loaded.config.head_dim);
}

TEST(Llama, TiedEmbeddingsLoadWithoutLmHeadAndShareOneStorage) {
  TempDir dir;
  copy_checkpoint(data_dir() / kModel, dir.path());
  auto config = read_json_file(dir.path() / "config.json");
  config["tie_word_embeddings"] = true;
  write_json(dir.path() / "config.json", config);
  rewrite_weights(data_dir() / kModel / "model.safetensors", dir.path(), [](auto& tensors) {
    tensors.erase(std::remove_if(tensors.begin(), tensors.end(),
                                 [](const auto& t) { return t.first == "lm_head.weight"; }),
                  tensors.end());
  });
  auto tied = load_test_model(dir.path());
  const auto params = tied.model->named_parameters();
  const auto& embedding = params["model.embed_tokens.weight"];
  EXPECT_EQ(params["lm_head.weight"].data_ptr(), embedding.data_ptr());
  const auto ids = golden_logits(kModel).input_ids;
  const auto expected = torch::matmul(tied.model->hidden_states(ids, nullptr), embedding.t());
  EXPECT_LE(max_abs_diff(forward_no_grad(*tied.model, ids), expected), 1e-5);
}

std::string user_error_text(const std::filesystem::path& dir) {
  try {
    load_test_model(dir);
  } catch (const UserError& e) {
    return e.what();
  }
  return "no UserError";
}

TEST(Llama, ScaledRopeIsAUserErrorNamingConfigJson) {
  TempDir dir;
  copy_checkpoint(data_dir() / kModel, dir.path());
  auto config = read_json_file(dir.path() / "config.json");
  config["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}};
  write_json(dir.path() / "config.json", config);
  const auto message = user_error_text(dir.path());
  EXPECT_NE(message.find("config.json"), std::string::npos) << message;
  EXPECT_NE(message.find("yarn"), std::string::npos) << message;
}

TEST(Llama, UnknownHiddenActIsAUserErrorNamingConfigJson) {
  TempDir dir;
  copy_checkpoint(data_dir() / kModel, dir.path());
  auto config = read_json_file(dir.path() / "config.json");
  config["hidden_act"] = "quick_gelu_x";
  write_json(dir.path() / "config.json", config);
  const auto message = user_error_text(dir.path());
  EXPECT_NE(message.find("config.json"), std::string::npos) << message;
  EXPECT_NE(message.find("quick_gelu_x"), std::string::npos) << message;
}

TEST(Llama, WrongKeyValueShapeIsAUserErrorNamingTheTensor) {
  TempDir dir;
  copy_checkpoint(data_dir() / kModel, dir.path());
  rewrite_weights(data_dir() / kModel / "model.safetensors", dir.path(), [](auto& tensors) {
    for (auto& [name, tensor] : tensors) {
      if (name == "model.layers.0.self_attn.k_proj.weight") tensor = torch::zeros({64, 64});
    }
  });
  const auto message = user_error_text(dir.path());
  EXPECT_NE(message.find("model.safetensors"), std::string::npos) << message;
  EXPECT_NE(message.find("model.layers.0.self_attn.k_proj.weight"), std::string::npos) << message;
  EXPECT_NE(message.find("[32, 64]"), std::string::npos) << message;
}

}  // namespace
}  // namespace llm::test
