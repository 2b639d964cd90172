// How the gpt_neox plugin reads config.json: GPTNeoXConfig's defaults and the published key names
// (rotary_pct, rotary_emb_base, layer_norm_eps, use_parallel_residual), seen through
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
  return {{"model_type", "gpt_neox"}, {"vocab_size", 100},      {"hidden_size", 32},
          {"intermediate_size", 64},  {"num_hidden_layers", 2}, {"num_attention_heads", 4}};
}

TEST(GptNeoXConfig, TinyPythiaUsesPartialRotaryAndParallelResidual) {
  const auto c = read_model_config(data_dir() / "tiny-pythia");
  const auto s = settings_of(c);
  EXPECT_EQ(s["partial_rotary_factor"], c.raw["rotary_pct"]);
  EXPECT_EQ(s["rotary_dim"], static_cast<int64_t>(c.head_dim * c.raw["rotary_pct"].get<double>()));
  EXPECT_LT(s["rotary_dim"].get<int64_t>(), c.head_dim);
  EXPECT_EQ(s["rope_theta"], c.raw["rotary_emb_base"]);
  EXPECT_EQ(s["layer_norm_eps"], c.raw["layer_norm_eps"]);
  EXPECT_EQ(s["use_parallel_residual"], true);
  EXPECT_EQ(s["attention_bias"], true);  // GPT-NeoX default: QKV and dense have biases
  EXPECT_EQ(s["tie_word_embeddings"], false);
}

TEST(GptNeoXConfig, PublishedAndTransformers5LayoutsReadTheSame) {
  const auto published = read_model_config(data_dir() / "tiny-pythia");
  const auto path = data_dir() / "golden" / "config-v5-style" / "tiny-pythia.json";
  const auto v5 = ModelConfig::from_json(read_json_file(path), path.string());
  EXPECT_EQ(settings_of(published), settings_of(v5));
}

TEST(GptNeoXConfig, DefaultsFollowTransformers) {
  const auto s = settings_of(ModelConfig::from_json(minimal(), "t.json"));
  EXPECT_EQ(s["attention_bias"], true);
  EXPECT_EQ(s["use_parallel_residual"], true);
  EXPECT_EQ(s["partial_rotary_factor"], 0.25);  // GPTNeoXConfig.rotary_pct
  EXPECT_EQ(s["rotary_dim"], 8 / 4);
  EXPECT_EQ(s["rope_theta"], 10000.0);
  EXPECT_EQ(s["layer_norm_eps"], 1e-5);
  EXPECT_EQ(s["hidden_act"], "gelu");
  EXPECT_EQ(s["tie_word_embeddings"], false);
}

TEST(GptNeoXConfig, ZeroRotaryPctIsAUserErrorNamingTheFileAndTheKey) {
  const auto path = data_dir() / "bad" / "configs" / "rotary-pct-zero.json";
  const auto config = ModelConfig::from_json(read_json_file(path), path.string());
  const auto message = user_error_of([&] { settings_of(config); });
  EXPECT_NE(message.find("rotary-pct-zero.json"), std::string::npos) << message;
  EXPECT_NE(message.find("'rotary_pct'"), std::string::npos) << message;
}

TEST(GptNeoXConfig, MissingIntermediateSizeIsAUserErrorNamingTheKey) {
  auto json = minimal();
  json.erase("intermediate_size");
  const auto config = ModelConfig::from_json(json, "t.json");
  const auto message = user_error_of([&] { settings_of(config); });
  EXPECT_NE(message.find("t.json"), std::string::npos) << message;
  EXPECT_NE(message.find("'intermediate_size'"), std::string::npos) << message;
}

}  // namespace
}  // namespace llm::test
