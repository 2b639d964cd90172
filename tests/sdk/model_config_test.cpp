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
void expect_same_common_record(const llm::ModelConfig& a, const llm::ModelConfig& b) {
  EXPECT_EQ(a.model_type, b.model_type);
  EXPECT_EQ(a.architectures, b.architectures);
  EXPECT_EQ(a.vocab_size, b.vocab_size);
  EXPECT_EQ(a.hidden_size, b.hidden_size);
  EXPECT_EQ(a.num_layers, b.num_layers);
  EXPECT_EQ(a.num_heads, b.num_heads);
  EXPECT_EQ(a.num_kv_heads, b.num_kv_heads);
  EXPECT_EQ(a.head_dim, b.head_dim);
  EXPECT_EQ(a.max_position_embeddings, b.max_position_embeddings);
  EXPECT_EQ(a.bos_token_id, b.bos_token_id);
  EXPECT_EQ(a.eos_token_ids, b.eos_token_ids);
  EXPECT_EQ(a.dtype, b.dtype);
}

// The families' own keys in both layouts: tests/plugins/<family>/*_config_test.cpp.
TEST(ModelConfig, PublishedAndTransformers5LayoutsParseToTheSameCommonRecord) {
  for (const std::string model : {"tiny-pythia", "tiny-llama"}) {
    SCOPED_TRACE(model);
    const auto published = llm::read_model_config(data_dir() / model);
    const auto v5 = parse_file(data_dir() / "golden" / "config-v5-style" / (model + ".json"));
    expect_same_common_record(published, v5);
  }
}

TEST(ModelConfig, TinyPythiaCommonRecord) {
  const auto c = llm::read_model_config(data_dir() / "tiny-pythia");
  EXPECT_EQ(c.model_type, "gpt_neox");
  EXPECT_EQ(c.head_dim * c.num_heads, c.hidden_size);
  EXPECT_EQ(c.num_kv_heads, c.num_heads);
  EXPECT_EQ(c.eos_token_ids, std::vector<int64_t>{c.raw["eos_token_id"].get<int64_t>()});
  EXPECT_EQ(c.dtype, "float32");
  EXPECT_NE(c.source.find("config.json"), std::string::npos);
}

TEST(ModelConfig, TinyLlamaUsesGroupedQueryAttention) {
  const auto c = llm::read_model_config(data_dir() / "tiny-llama");
  EXPECT_EQ(c.model_type, "llama");
  EXPECT_EQ(c.num_kv_heads, c.raw["num_key_value_heads"].get<int64_t>());
  EXPECT_LT(c.num_kv_heads, c.num_heads);
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

TEST(ModelConfig, CommonDefaults) {
  const auto c = parse(minimal("any_family"));
  EXPECT_EQ(c.num_kv_heads, c.num_heads);
  EXPECT_EQ(c.head_dim, 32 / 4);
  EXPECT_EQ(c.max_position_embeddings, 2048);
  EXPECT_FALSE(c.bos_token_id.has_value());
  EXPECT_TRUE(c.eos_token_ids.empty());
  EXPECT_EQ(c.dtype, "");
}

TEST(ModelConfig, ExplicitHeadDimNeedNotDivideHidden) {
  auto json = minimal("llama");
  json["head_dim"] = 48;
  json["num_attention_heads"] = 3;
  const auto c = parse(json);
  EXPECT_EQ(c.head_dim, 48);
  EXPECT_EQ(llm::read_rotary_config(c, 10000.0, 1.0).rotary_dim, 48);
}

TEST(ModelConfig, AcceptsEosListNullPadAndDefaultRopeScaling) {
  auto json = minimal("llama");
  json["eos_token_id"] = {2, 7};
  json["pad_token_id"] = nullptr;
  json["rope_scaling"] = {{"rope_type", "default"}};
  const auto c = parse(json);
  EXPECT_EQ(c.eos_token_ids, (std::vector<int64_t>{2, 7}));
}

TEST(ModelConfig, RotaryConfigReadsBothLayoutsWithTheFamilysDefaults) {
  const auto plain = llm::read_rotary_config(parse(minimal("x")), 500.0, 0.5);
  EXPECT_EQ(plain.theta, 500.0);
  EXPECT_EQ(plain.partial_rotary_factor, 0.5);
  EXPECT_EQ(plain.rotary_dim, 4);
  auto json = minimal("x");
  json["rope_theta"] = 20.0;
  json["partial_rotary_factor"] = 0.25;
  const auto top = llm::read_rotary_config(parse(json), 500.0, 0.5);
  json.erase("rope_theta");
  json.erase("partial_rotary_factor");
  json["rope_parameters"] = {
      {"rope_type", "default"}, {"rope_theta", 20.0}, {"partial_rotary_factor", 0.25}};
  const auto nested = llm::read_rotary_config(parse(json), 500.0, 0.5);
  EXPECT_EQ(top.theta, 20.0);
  EXPECT_EQ(nested.theta, 20.0);
  EXPECT_EQ(top.rotary_dim, 2);
  EXPECT_EQ(nested.rotary_dim, 2);
}

TEST(ModelConfig, FamilyKeyReadersNameTheFileAndTheKey) {
  auto json = minimal("x");
  json["rms_norm_eps"] = 2.0;
  json["partial_rotary_factor"] = 0.0;
  json["intermediate_size"] = -3;
  const auto c = parse(json);
  auto message = user_error_of([&] { llm::config_norm_eps(c, "rms_norm_eps", 1e-6); });
  EXPECT_NE(message.find("t.json: 'rms_norm_eps' must be in (0, 1)"), std::string::npos) << message;
  message = user_error_of([&] { llm::read_rotary_config(c, 10000.0, 1.0); });
  EXPECT_NE(message.find("partial_rotary_factor"), std::string::npos) << message;
  message = user_error_of([&] { llm::config_size(c, "intermediate_size"); });
  EXPECT_NE(message.find("'intermediate_size' must be a positive integer"), std::string::npos)
      << message;
  message = user_error_of([&] { llm::config_size(c, "moe_size"); });
  EXPECT_NE(message.find("'moe_size'"), std::string::npos) << message;
  EXPECT_EQ(llm::config_size(c, "moe_size", 5), 5);
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
