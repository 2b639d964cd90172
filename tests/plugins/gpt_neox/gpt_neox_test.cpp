#include <gtest/gtest.h>

#include "llm/error.hpp"
#include "sdk/nn/causal_lm_checks.hpp"

namespace llm::test {
namespace {

const std::string kModel = "tiny-pythia";

TEST(GptNeoX, LogitsMatchTransformersWithin1e4) { expect_logits_match_golden(kModel); }
TEST(GptNeoX, MaskedLossMatchesTransformers) { expect_masked_loss_matches_golden(kModel); }
TEST(GptNeoX, GreedyGenerationReproducesTransformers) { expect_greedy_matches_golden(kModel); }
TEST(GptNeoX, CachedDecodeMatchesFullForward) { expect_cached_decode_matches_full_forward(kModel); }
TEST(GptNeoX, TransformersV5ConfigBuildsTheSameModel) {
  expect_v5_config_gives_same_logits(kModel);
}
TEST(GptNeoX, Bf16ForwardStaysNearFp32) { expect_bf16_forward_near_fp32(kModel); }
TEST(GptNeoX, CudaMatchesTransformers) { expect_cuda_matches_golden(kModel); }
TEST(GptNeoX, AdaptableLinearsNameEveryLinearLayer) {
  expect_adaptable_linears_cover_every_matrix(kModel);
}

TEST(GptNeoX, RecognisedByModelTypeAndArchitecture) {
  auto loaded = load_test_model(data_dir() / kModel);
  EXPECT_EQ(loaded.family->name(), "gpt_neox");
  auto by_architecture = loaded.config;
  by_architecture.model_type = "something_else";
  EXPECT_TRUE(loaded.family->recognises(by_architecture));
  by_architecture.architectures = {"LlamaForCausalLM"};
  EXPECT_FALSE(loaded.family->recognises(by_architecture));
}

TEST(GptNeoX, TrainedModelGeneratesLikeTransformers) {
  const auto cases = read_json_file(data_dir() / "golden" / "tiny-pythia-trained-generate.json");
  auto loaded = load_test_model(data_dir() / "tiny-pythia-trained");
  ASSERT_EQ(cases.size(), 3u);
  for (const auto& [prompt_text, expected] : cases.items()) {
    const auto prompt = expected["prompt_ids"].get<std::vector<int64_t>>();
    expect_greedy_tokens_match(*loaded.model, greedy(*loaded.model, prompt, 12),
                               expected["greedy_out"].get<std::vector<int64_t>>(), prompt_text);
  }
}

TEST(GptNeoX, SequentialResidualDiffersFromParallelOnTheSameWeights) {
  TempDir dir;
  copy_checkpoint(data_dir() / kModel, dir.path());
  auto config = read_json_file(dir.path() / "config.json");
  config["use_parallel_residual"] = false;
  write_json(dir.path() / "config.json", config);
  const auto ids = golden_logits(kModel).input_ids;
  auto parallel = load_test_model(data_dir() / kModel);
  auto sequential = load_test_model(dir.path());
  EXPECT_EQ(sequential.family->settings(sequential.config)["use_parallel_residual"], false);
  const auto logits = forward_no_grad(*sequential.model, ids);
  EXPECT_TRUE(torch::isfinite(logits).all().item<bool>());
  EXPECT_GT(max_abs_diff(logits, forward_no_grad(*parallel.model, ids)), 1e-3);
}

std::string user_error_text(const std::filesystem::path& dir) {
  try {
    load_test_model(dir);
  } catch (const UserError& e) {
    return e.what();
  }
  return "no UserError";
}

TEST(GptNeoX, WrongTensorShapeIsAUserErrorNamingFileTensorAndShapes) {
  TempDir dir;
  copy_checkpoint(data_dir() / kModel, dir.path());
  rewrite_weights(data_dir() / kModel / "model.safetensors", dir.path(), [](auto& tensors) {
    for (auto& [name, tensor] : tensors) {
      if (name == "gpt_neox.layers.1.mlp.dense_h_to_4h.weight") tensor = tensor.narrow(0, 0, 128);
    }
  });
  const auto message = user_error_text(dir.path());
  EXPECT_NE(message.find("model.safetensors"), std::string::npos) << message;
  EXPECT_NE(message.find("gpt_neox.layers.1.mlp.dense_h_to_4h.weight"), std::string::npos)
      << message;
  EXPECT_NE(message.find("[128, 64]"), std::string::npos) << message;
  EXPECT_NE(message.find("[256, 64]"), std::string::npos) << message;
}

TEST(GptNeoX, MissingTensorIsAUserErrorNamingIt) {
  TempDir dir;
  copy_checkpoint(data_dir() / kModel, dir.path());
  rewrite_weights(data_dir() / kModel / "model.safetensors", dir.path(), [](auto& tensors) {
    tensors.erase(std::remove_if(tensors.begin(), tensors.end(),
                                 [](const auto& t) { return t.first == "embed_out.weight"; }),
                  tensors.end());
  });
  const auto message = user_error_text(dir.path());
  EXPECT_NE(message.find("model.safetensors"), std::string::npos) << message;
  EXPECT_NE(message.find("missing tensor 'embed_out.weight'"), std::string::npos) << message;
}

TEST(GptNeoX, UnexpectedTensorIsAUserErrorButOldBuffersAreIgnored) {
  TempDir dir;
  copy_checkpoint(data_dir() / kModel, dir.path());
  rewrite_weights(data_dir() / kModel / "model.safetensors", dir.path(), [](auto& tensors) {
    tensors.emplace_back("gpt_neox.layers.0.attention.rotary_emb.inv_freq", torch::ones({2}));
    tensors.emplace_back("gpt_neox.layers.0.attention.masked_bias", torch::ones({1}));
  });
  EXPECT_NO_THROW(load_test_model(dir.path()));
  rewrite_weights(dir.path() / "model.safetensors", dir.path(), [](auto& tensors) {
    tensors.emplace_back("gpt_neox.layers.9.mlp.extra.weight", torch::ones({2, 2}));
  });
  const auto message = user_error_text(dir.path());
  EXPECT_NE(message.find("unexpected tensor 'gpt_neox.layers.9.mlp.extra.weight'"),
            std::string::npos)
      << message;
}

TEST(GptNeoX, UnknownHiddenActIsAUserErrorNamingConfigJson) {
  TempDir dir;
  copy_checkpoint(data_dir() / kModel, dir.path());
  auto config = read_json_file(dir.path() / "config.json");
  config["hidden_act"] = "swiglu_v7";
  write_json(dir.path() / "config.json", config);
  const auto message = user_error_text(dir.path());
  EXPECT_NE(message.find("config.json"), std::string::npos) << message;
  EXPECT_NE(message.find("swiglu_v7"), std::string::npos) << message;
}

TEST(GptNeoX, TanhGeluVariantsRunAndStayCloseToExactGelu) {
  TempDir dir;
  copy_checkpoint(data_dir() / kModel, dir.path());
  auto config = read_json_file(dir.path() / "config.json");
  config["hidden_act"] = "gelu_new";
  write_json(dir.path() / "config.json", config);
  const auto ids = golden_logits(kModel).input_ids;
  auto tanh_model = load_test_model(dir.path());
  const auto diff =
      max_abs_diff(forward_no_grad(*tanh_model.model, ids), golden_logits(kModel).logits);
  EXPECT_GT(diff, 0.0);
  EXPECT_LT(diff, 0.05);
}

TEST(GptNeoX, RandomInitFollowsInitializerRange) {
  TempDir dir;
  auto config = read_json_file(data_dir() / kModel / "config.json");
  config["hidden_size"] = 128;
  config["intermediate_size"] = 512;
  write_json(dir.path() / "config.json", config);  // no weights: random init needs none
  const auto loaded =
      llmhost::load_model(model_plugins(), dir.path(), torch::kCPU, torch::kFloat, true, 7);
  const double range = config["initializer_range"].get<double>();
  for (const auto& item : loaded.model->named_parameters()) {
    const auto& p = item.value();
    if (p.dim() == 2) {
      EXPECT_NEAR(p.std().item<double>(), range, 0.05 * range) << item.key();
      EXPECT_NEAR(p.mean().item<double>(), 0.0, 0.05 * range) << item.key();
    } else if (item.key().find("bias") != std::string::npos) {
      EXPECT_EQ(p.abs().max().item<double>(), 0.0) << item.key();
    } else {
      EXPECT_TRUE(p.eq(1).all().item<bool>()) << item.key();
    }
  }
  const auto again =
      llmhost::load_model(model_plugins(), dir.path(), torch::kCPU, torch::kFloat, true, 7);
  EXPECT_TRUE(again.model->parameters()[0].equal(loaded.model->parameters()[0]));
}

}  // namespace
}  // namespace llm::test
