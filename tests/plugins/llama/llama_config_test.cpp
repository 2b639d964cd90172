// How the llama plugin reads config.json (LlamaConfig's defaults), seen through
// ModelFamily::settings.
#include <gtest/gtest.h>

#include "llm/error.hpp"
#include "llm/model_config.hpp"
#include "sdk/nn/model_test_support.hpp"

namespace llm::test {
namespace {

Json settings_of(const ModelConfig& config) {
  return model_plugins().family_for(config)->settings(config);
}

Json minimal() {
  return {{"model_type", "llama"},   {"vocab_size", 100},      {"hidden_size", 32},
          {"intermediate_size", 64}, {"num_hidden_layers", 2}, {"num_attention_heads", 4}};
}

TEST(LlamaConfig, TinyLlamaRotatesTheWholeHeadWithoutBiases) {
  const auto c = read_model_config(data_dir() / "tiny-llama");
  const auto s = settings_of(c);
  EXPECT_EQ(s["rotary_dim"], c.head_dim);
  EXPECT_EQ(s["rope_theta"], c.raw["rope_theta"]);
  EXPECT_EQ(s["rms_norm_eps"], c.raw["rms_norm_eps"]);
  EXPECT_EQ(s["qkv_bias"], false);
  EXPECT_EQ(s["output_bias"], false);
  EXPECT_EQ(s["mlp_bias"], false);
  EXPECT_EQ(s["hidden_act"], "silu");
}

TEST(LlamaConfig, PublishedAndTransformers5LayoutsReadTheSame) {
  for (const std::string model : {"tiny-llama", "tiny-llama3"}) {
    SCOPED_TRACE(model);
    const auto published = read_model_config(data_dir() / model);
    const auto path = data_dir() / "golden" / "config-v5-style" / (model + ".json");
    const auto v5 = ModelConfig::from_json(read_json_file(path), path.string());
    EXPECT_EQ(settings_of(published), settings_of(v5));
  }
}

TEST(LlamaConfig, DefaultsFollowTransformers) {
  const auto s = settings_of(ModelConfig::from_json(minimal(), "t.json"));
  EXPECT_EQ(s["rotary_dim"], 32 / 4);
  EXPECT_EQ(s["rope_theta"], 10000.0);
  EXPECT_EQ(s["rope_type"], "default");
  EXPECT_EQ(s["rms_norm_eps"], 1e-6);  // LlamaConfig.rms_norm_eps
  EXPECT_EQ(s["qkv_bias"], false);
  EXPECT_EQ(s["tie_word_embeddings"], false);
}

TEST(LlamaConfig, PartialRotaryIsAUserErrorNamingTheFile) {
  auto json = minimal();
  json["partial_rotary_factor"] = 0.5;
  const auto config = ModelConfig::from_json(json, "t.json");
  const auto message = user_error_of([&] { settings_of(config); });
  EXPECT_NE(message.find("t.json: llama rotates the whole head"), std::string::npos) << message;
}

TEST(LlamaConfig, BadNormEpsIsAUserErrorNamingTheKey) {
  auto json = minimal();
  json["rms_norm_eps"] = 0;
  const auto config = ModelConfig::from_json(json, "t.json");
  const auto message = user_error_of([&] { settings_of(config); });
  EXPECT_NE(message.find("t.json: 'rms_norm_eps' must be in (0, 1)"), std::string::npos) << message;
}

}  // namespace
}  // namespace llm::test
