// config.json's llama3 RoPE scaling (both key layouts) and EOS ids from generation_config.json.
#include <gtest/gtest.h>

#include <fstream>

#include "llm/error.hpp"
#include "llm/model_config.hpp"
#include "llm/rope_scaling.hpp"
#include "support/test_support.hpp"

namespace {

using llm::test::TempDir;
using llm::test::user_error_of;

llm::Json minimal_llama() {
  return {{"model_type", "llama"},         {"vocab_size", 100},      {"hidden_size", 32},
          {"intermediate_size", 64},       {"num_hidden_layers", 2}, {"num_attention_heads", 4},
          {"max_position_embeddings", 128}};
}

llm::Json llama3_scaling() {
  return {{"rope_type", "llama3"},
          {"factor", 8.0},
          {"low_freq_factor", 1.0},
          {"high_freq_factor", 4.0},
          {"original_max_position_embeddings", 64}};
}

void write(const std::filesystem::path& path, const llm::Json& json) {
  std::ofstream(path) << json.dump();
}

TEST(ModelConfigRopeScaling, Llama3ScalingIsReadFromRopeScaling) {
  auto json = minimal_llama();
  json["rope_theta"] = 500000.0;
  json["rope_scaling"] = llama3_scaling();
  const auto c = llm::ModelConfig::from_json(json, "config.json");
  EXPECT_EQ(llm::read_rotary_config(c, 10000.0, 1.0).theta, 500000.0);
  EXPECT_EQ(llm::rope_scaling_of(c).type, "llama3");
  EXPECT_EQ(llm::rope_scaling_of(c).factor, 8.0);
  EXPECT_EQ(llm::rope_scaling_of(c).low_freq_factor, 1.0);
  EXPECT_EQ(llm::rope_scaling_of(c).high_freq_factor, 4.0);
  EXPECT_EQ(llm::rope_scaling_of(c).original_max_position_embeddings, 64.0);
}

TEST(ModelConfigRopeScaling, Transformers5RopeParametersGiveTheSameScaling) {
  auto legacy = minimal_llama();
  legacy["rope_theta"] = 500000.0;
  legacy["rope_scaling"] = llama3_scaling();
  auto v5 = minimal_llama();
  v5["rope_parameters"] = llama3_scaling();
  v5["rope_parameters"]["rope_theta"] = 500000.0;
  const auto a = llm::ModelConfig::from_json(legacy, "a.json");
  const auto b = llm::ModelConfig::from_json(v5, "b.json");
  EXPECT_EQ(llm::read_rotary_config(b, 10000.0, 1.0).theta,
            llm::read_rotary_config(a, 10000.0, 1.0).theta);
  EXPECT_FALSE(llm::rope_scaling_of(a) < llm::rope_scaling_of(b) ||
               llm::rope_scaling_of(b) < llm::rope_scaling_of(a));
}

TEST(ModelConfigRopeScaling, OriginalContextDefaultsToMaxPositionEmbeddings) {
  auto json = minimal_llama();
  json["rope_scaling"] = llama3_scaling();
  json["rope_scaling"].erase("original_max_position_embeddings");
  EXPECT_EQ(llm::rope_scaling_of(llm::ModelConfig::from_json(json, "c.json"))
                .original_max_position_embeddings,
            128.0);
}

TEST(ModelConfigRopeScaling, NoScalingIsTheDefaultType) {
  const auto c = llm::ModelConfig::from_json(minimal_llama(), "c.json");
  EXPECT_EQ(llm::rope_scaling_of(c).type, "default");
}

TEST(ModelConfigRopeScaling, IncompleteOrInconsistentLlama3ScalingIsAUserError) {
  auto json = minimal_llama();
  json["rope_scaling"] = llama3_scaling();
  json["rope_scaling"].erase("factor");
  auto message = user_error_of([&] { llm::ModelConfig::from_json(json, "config.json"); });
  EXPECT_NE(message.find("config.json"), std::string::npos) << message;
  EXPECT_NE(message.find("'factor'"), std::string::npos) << message;

  json["rope_scaling"] = llama3_scaling();
  json["rope_scaling"]["high_freq_factor"] = 0.5;
  message = user_error_of([&] { llm::ModelConfig::from_json(json, "config.json"); });
  EXPECT_NE(message.find("high_freq_factor"), std::string::npos) << message;

  json["rope_scaling"] = {{"rope_type", "dynamic"}, {"factor", 2.0}};
  message = user_error_of([&] { llm::ModelConfig::from_json(json, "config.json"); });
  EXPECT_NE(message.find("'dynamic'"), std::string::npos) << message;
}

TEST(ModelConfigEos, GenerationConfigEosListIsWhatGenerationStopsAt) {
  TempDir dir;
  auto json = minimal_llama();
  json["eos_token_id"] = 7;
  write(dir.path() / "config.json", json);
  EXPECT_EQ(llm::read_model_config(dir.path()).eos_token_ids, (std::vector<int64_t>{7}));
  write(dir.path() / "generation_config.json", {{"eos_token_id", {7, 9}}});
  EXPECT_EQ(llm::read_model_config(dir.path()).eos_token_ids, (std::vector<int64_t>{7, 9}));
  // A generation config without eos_token_id leaves config.json's.
  write(dir.path() / "generation_config.json", {{"do_sample", false}});
  EXPECT_EQ(llm::read_model_config(dir.path()).eos_token_ids, (std::vector<int64_t>{7}));
}

TEST(ModelConfigEos, MalformedGenerationConfigIsAUserErrorNamingIt) {
  TempDir dir;
  write(dir.path() / "config.json", minimal_llama());
  write(dir.path() / "generation_config.json", {{"eos_token_id", "two"}});
  const auto message = user_error_of([&] { llm::read_model_config(dir.path()); });
  EXPECT_NE(message.find("generation_config.json"), std::string::npos) << message;
  EXPECT_NE(message.find("eos_token_id"), std::string::npos) << message;
}

}  // namespace
