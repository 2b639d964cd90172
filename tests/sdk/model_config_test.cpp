#include "llm/model_config.hpp"

#include <gtest/gtest.h>

#include <fstream>

#include "llm/error.hpp"
#include "support/test_support.hpp"

namespace {

namespace fs = std::filesystem;
using llm::test::data_dir;
using llm::test::TempDir;

using llm::test::user_error_of;

llm::ModelConfig parse_file(const fs::path& path) {
  return llm::ModelConfig::from_json(llm::read_json_file(path), path.string());
}

llm::ModelConfig parse(const llm::Json& json) {
  return llm::ModelConfig::from_json(json, "t.json");
}

// Every parsed field except the raw JSON and the source name.
void expect_same_architecture(const llm::ModelConfig& a, const llm::ModelConfig& b) {
  EXPECT_EQ(a.model_type, b.model_type);
  EXPECT_EQ(a.architectures, b.architectures);
  EXPECT_EQ(a.vocab_size, b.vocab_size);
  EXPECT_EQ(a.hidden_size, b.hidden_size);
  EXPECT_EQ(a.num_layers, b.num_layers);
  EXPECT_EQ(a.num_heads, b.num_heads);
  EXPECT_EQ(a.num_kv_heads, b.num_kv_heads);
  EXPECT_EQ(a.head_dim, b.head_dim);
  EXPECT_EQ(a.intermediate_size, b.intermediate_size);
  EXPECT_EQ(a.max_position_embeddings, b.max_position_embeddings);
  EXPECT_EQ(a.rope_theta, b.rope_theta);
  EXPECT_EQ(a.partial_rotary_factor, b.partial_rotary_factor);
  EXPECT_EQ(a.rotary_dim, b.rotary_dim);
  EXPECT_EQ(a.norm_eps, b.norm_eps);
  EXPECT_EQ(a.hidden_act, b.hidden_act);
  EXPECT_EQ(a.tie_word_embeddings, b.tie_word_embeddings);
  EXPECT_EQ(a.use_parallel_residual, b.use_parallel_residual);
  EXPECT_EQ(a.attention_bias, b.attention_bias);
  EXPECT_EQ(a.mlp_bias, b.mlp_bias);
  EXPECT_EQ(a.initializer_range, b.initializer_range);
  EXPECT_EQ(a.bos_token_id, b.bos_token_id);
  EXPECT_EQ(a.eos_token_ids, b.eos_token_ids);
  EXPECT_EQ(a.dtype, b.dtype);
}

TEST(ModelConfig, PublishedAndTransformers5LayoutsParseToTheSameConfig) {
  for (const std::string model : {"tiny-pythia", "tiny-llama"}) {
    SCOPED_TRACE(model);
    const auto published = llm::read_model_config(data_dir() / model);
    const auto v5 = parse_file(data_dir() / "golden" / "config-v5-style" / (model + ".json"));
    expect_same_architecture(published, v5);
  }
}

TEST(ModelConfig, TinyPythiaUsesPartialRotaryAndParallelResidual) {
  const auto c = llm::read_model_config(data_dir() / "tiny-pythia");
  EXPECT_EQ(c.model_type, "gpt_neox");
  EXPECT_EQ(c.head_dim * c.num_heads, c.hidden_size);
  EXPECT_EQ(c.num_kv_heads, c.num_heads);
  EXPECT_EQ(c.partial_rotary_factor, c.raw["rotary_pct"].get<double>());
  EXPECT_EQ(c.rotary_dim, static_cast<int64_t>(c.head_dim * c.raw["rotary_pct"].get<double>()));
  EXPECT_LT(c.rotary_dim, c.head_dim);
  EXPECT_EQ(c.rope_theta, c.raw["rotary_emb_base"].get<double>());
  EXPECT_EQ(c.norm_eps, c.raw["layer_norm_eps"].get<double>());
  EXPECT_TRUE(c.use_parallel_residual);
  EXPECT_TRUE(c.attention_bias);  // GPT-NeoX default: QKV and dense have biases
  EXPECT_TRUE(c.mlp_bias);
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_EQ(c.eos_token_ids, std::vector<int64_t>{c.raw["eos_token_id"].get<int64_t>()});
  EXPECT_EQ(c.dtype, "float32");
  EXPECT_NE(c.source.find("config.json"), std::string::npos);
}

TEST(ModelConfig, TinyLlamaUsesGroupedQueryAttentionAndNoBiases) {
  const auto c = llm::read_model_config(data_dir() / "tiny-llama");
  EXPECT_EQ(c.model_type, "llama");
  EXPECT_EQ(c.num_kv_heads, c.raw["num_key_value_heads"].get<int64_t>());
  EXPECT_LT(c.num_kv_heads, c.num_heads);
  EXPECT_EQ(c.rotary_dim, c.head_dim);
  EXPECT_EQ(c.rope_theta, c.raw["rope_theta"].get<double>());
  EXPECT_EQ(c.norm_eps, c.raw["rms_norm_eps"].get<double>());
  EXPECT_FALSE(c.attention_bias);
  EXPECT_FALSE(c.mlp_bias);
  EXPECT_FALSE(c.use_parallel_residual);
  EXPECT_EQ(c.hidden_act, "silu");
  EXPECT_EQ(c.bos_token_id, c.raw["bos_token_id"].get<int64_t>());
}

TEST(ModelConfig, ParsesRealSizedShapes) {
  int parsed = 0;
  for (const auto& entry : fs::directory_iterator(data_dir() / "shapes")) {
    SCOPED_TRACE(entry.path().string());
    const auto c = parse_file(entry.path());
    EXPECT_EQ(c.hidden_size, c.raw["hidden_size"].get<int64_t>());
    EXPECT_EQ(c.num_layers, c.raw["num_hidden_layers"].get<int64_t>());
    EXPECT_EQ(c.head_dim * c.num_heads, c.hidden_size);
    EXPECT_EQ(c.num_heads % c.num_kv_heads, 0);
    EXPECT_EQ(c.dtype, c.raw["torch_dtype"].get<std::string>());
    ++parsed;
  }
  EXPECT_EQ(parsed, 4);
}

llm::Json minimal(const std::string& model_type) {
  return {{"model_type", model_type}, {"vocab_size", 100},      {"hidden_size", 32},
          {"intermediate_size", 64},  {"num_hidden_layers", 2}, {"num_attention_heads", 4}};
}

TEST(ModelConfig, DefaultsFollowTransformersPerModelType) {
  const auto llama = parse(minimal("llama"));
  EXPECT_EQ(llama.num_kv_heads, llama.num_heads);
  EXPECT_EQ(llama.head_dim, 32 / 4);
  EXPECT_EQ(llama.rotary_dim, llama.head_dim);
  EXPECT_EQ(llama.rope_theta, 10000.0);
  EXPECT_EQ(llama.norm_eps, 1e-6);  // LlamaConfig.rms_norm_eps
  EXPECT_FALSE(llama.attention_bias);
  EXPECT_FALSE(llama.tie_word_embeddings);
  EXPECT_FALSE(llama.bos_token_id.has_value());

  const auto neox = parse(minimal("gpt_neox"));
  EXPECT_TRUE(neox.attention_bias);
  EXPECT_TRUE(neox.use_parallel_residual);
  EXPECT_EQ(neox.partial_rotary_factor, 0.25);  // GPTNeoXConfig.rotary_pct
  EXPECT_EQ(neox.rotary_dim, neox.head_dim / 4);
  EXPECT_EQ(neox.norm_eps, 1e-5);
  EXPECT_FALSE(neox.tie_word_embeddings);
}

TEST(ModelConfig, ExplicitHeadDimNeedNotDivideHidden) {
  auto json = minimal("llama");
  json["head_dim"] = 48;
  json["num_attention_heads"] = 3;
  const auto c = parse(json);
  EXPECT_EQ(c.head_dim, 48);
  EXPECT_EQ(c.rotary_dim, 48);
}

TEST(ModelConfig, AcceptsEosListNullPadAndDefaultRopeScaling) {
  auto json = minimal("llama");
  json["eos_token_id"] = {2, 7};
  json["pad_token_id"] = nullptr;
  json["rope_scaling"] = {{"rope_type", "default"}};
  const auto c = parse(json);
  EXPECT_EQ(c.eos_token_ids, (std::vector<int64_t>{2, 7}));
}

struct BadConfigCase {
  std::string file;
  std::string expected;
};

class ModelConfigBadFile : public testing::TestWithParam<BadConfigCase> {};

TEST_P(ModelConfigBadFile, IsAUserErrorNamingTheFileAndTheKey) {
  const auto path = data_dir() / "bad" / "configs" / GetParam().file;
  const auto message = user_error_of([&] { parse_file(path); });
  EXPECT_NE(message.find(GetParam().file), std::string::npos) << message;
  EXPECT_NE(message.find(GetParam().expected), std::string::npos)
      << "'" << GetParam().expected << "' not in: " << message;
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
}

INSTANTIATE_TEST_SUITE_P(
    ModelConfig, ModelConfigBadFile,
    testing::Values(BadConfigCase{"rope-scaling-linear.json", "'rope_scaling' of type 'linear'"},
                    BadConfigCase{"rope-parameters-yarn.json", "'rope_parameters' of type 'yarn'"},
                    BadConfigCase{"heads-do-not-divide-hidden.json", "not divisible"},
                    BadConfigCase{"kv-heads-do-not-divide-heads.json", "num_key_value_heads"},
                    BadConfigCase{"vocab-absurd.json", "'vocab_size'"},
                    BadConfigCase{"layers-absurd.json", "'num_hidden_layers'"},
                    BadConfigCase{"hidden-negative.json", "'hidden_size' must be a positive"},
                    BadConfigCase{"hidden-missing.json", "'hidden_size'"},
                    BadConfigCase{"hidden-string.json", "'hidden_size' must be an integer"},
                    BadConfigCase{"rotary-pct-zero.json", "rotary"},
                    BadConfigCase{"truncated.json", "invalid JSON at byte"}),
    [](const testing::TestParamInfo<BadConfigCase>& info) {
      std::string name = info.param.file.substr(0, info.param.file.find('.'));
      for (char& c : name) c = std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
      return name;
    });

TEST(ModelConfig, MissingDirectoryIsNamed) {
  const auto message = user_error_of([] { llm::read_model_config("/nonexistent/ckpt"); });
  EXPECT_EQ(message, "checkpoint directory '/nonexistent/ckpt' does not exist");
}

TEST(ModelConfig, DirectoryWithoutConfigJsonIsNamed) {
  TempDir dir;
  const auto message = user_error_of([&] { llm::read_model_config(dir.path()); });
  EXPECT_NE(message.find(dir.path().string()), std::string::npos) << message;
  EXPECT_NE(message.find("config.json"), std::string::npos) << message;
}

}  // namespace
