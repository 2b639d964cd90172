// generate through the real binary and real plugin loading: golden greedy outputs and bad input.
#include <gtest/gtest.h>

#include <fstream>

#include "llm/json_file.hpp"
#include "sdk/nn/causal_lm_checks.hpp"
#include "support/test_support.hpp"

namespace {

namespace fs = std::filesystem;
using llm::Json;
using llm::test::data_dir;
using llm::test::run_llmhost;
using llm::test::TempDir;

const char* kFunFactPrompt = "Tell me an interesting fun fact about earth:";

// Tie-aware (causal_lm_checks.hpp): the binary's tokens equal the reference's except after a tie
// at fp32 rounding, judged with the same model loaded in-process.
void expect_binary_greedy_matches(const fs::path& checkpoint, const Json& out, const Json& expected,
                                  const std::string& what = "") {
  ASSERT_TRUE(out.contains("output_ids")) << what;
  auto loaded = llm::test::load_test_model(checkpoint);
  llm::test::expect_greedy_tokens_match(*loaded.model,
                                        out["output_ids"].get<std::vector<int64_t>>(),
                                        expected.get<std::vector<int64_t>>(), what);
}

Json generate_json(const fs::path& checkpoint, const std::string& prompt, int new_tokens) {
  const auto r = run_llmhost({"--task", "generate", "--checkpoint_dir", checkpoint.string(),
                              "--prompt", prompt, "--temperature", "0", "--max_new_tokens",
                              std::to_string(new_tokens), "--ignore_eos", "--format", "json"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return r.exit_code == 0 ? Json::parse(r.out) : Json::object();
}

TEST(GenerateCli, GreedyTinyPythiaReproducesTransformers) {
  const Json golden = llm::read_json_file(data_dir() / "golden/summary.json")["tiny-pythia"];
  const Json out = generate_json(data_dir() / "tiny-pythia", kFunFactPrompt, 12);
  EXPECT_EQ(out["prompt_ids"], golden["greedy_prompt"]);
  expect_binary_greedy_matches(data_dir() / "tiny-pythia", out, golden["greedy_out"]);
  EXPECT_EQ(out["new_tokens"], 12);
}

TEST(GenerateCli, GreedyTinyLlamaReproducesTransformers) {
  const Json golden = llm::read_json_file(data_dir() / "golden/summary.json")["tiny-llama"];
  const Json out = generate_json(data_dir() / "tiny-llama", kFunFactPrompt, 12);
  EXPECT_EQ(out["prompt_ids"], golden["greedy_prompt"]);  // starts with <s>
  expect_binary_greedy_matches(data_dir() / "tiny-llama", out, golden["greedy_out"]);
}

TEST(GenerateCli, TrainedTinyPythiaReproducesAllGoldenPrompts) {
  const Json golden = llm::read_json_file(data_dir() / "golden/tiny-pythia-trained-generate.json");
  int checked = 0;
  for (const auto& [prompt, expected] : golden.items()) {
    if (prompt == "meta") continue;
    const Json out = generate_json(data_dir() / "tiny-pythia-trained", prompt, 12);
    EXPECT_EQ(out["prompt_ids"], expected["prompt_ids"]) << prompt;
    expect_binary_greedy_matches(data_dir() / "tiny-pythia-trained", out, expected["greedy_out"],
                                 prompt);
    // The text follows the tokens: compared only where they matched exactly.
    if (out["output_ids"] == expected["greedy_out"]) {
      EXPECT_EQ(out["text"], expected["text"]) << prompt;
    }
    ++checked;
  }
  EXPECT_EQ(checked, 3);
}

TEST(GenerateCli, TrainedModelAnswersTheArithmeticQuestionInTextMode) {
  const auto r = run_llmhost({"--task", "generate", "--checkpoint_dir",
                              (data_dir() / "tiny-pythia-trained").string(), "--prompt",
                              "Question: What is (3 + 4) * 2?\nAnswer:", "--temperature", "0",
                              "--max_new_tokens", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("Question: What is (3 + 4) * 2?\nAnswer: 14", 0), 0u) << r.out;
  EXPECT_NE(r.err.find("tokens/s"), std::string::npos) << r.err;
}

TEST(GenerateCli, SamplingIsReproducibleForAGivenSeed) {
  auto sample = [](const std::string& seed) {
    const auto r =
        run_llmhost({"--task", "generate", "--checkpoint_dir",
                     (data_dir() / "tiny-pythia-trained").string(), "--prompt", "The",
                     "--max_new_tokens", "16", "--ignore_eos", "--seed", seed, "--format", "json"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return Json::parse(r.out)["output_ids"];
  };
  EXPECT_EQ(sample("7"), sample("7"));
}

// ---- bad input: exit code 2, one line naming the file or flag --------------------------------

struct BadInput {
  int exit_code;
  std::string err;
};

BadInput generate_on(const fs::path& checkpoint, const std::string& prompt = "Hello") {
  const auto r = run_llmhost({"--task", "generate", "--checkpoint_dir", checkpoint.string(),
                              "--prompt", prompt, "--max_new_tokens", "2"});
  return {r.exit_code, r.err};
}

void expect_one_line_error(const BadInput& r, const std::string& needle) {
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find(needle), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_EQ(r.err.find("internal error"), std::string::npos) << r.err;
}

fs::path copy_checkpoint(const TempDir& tmp, const std::string& name) {
  const fs::path dir = tmp.path() / name;
  fs::copy(data_dir() / name, dir, fs::copy_options::recursive);
  for (const auto& entry : fs::directory_iterator(dir)) {
    fs::permissions(entry.path(), fs::perms::owner_read | fs::perms::owner_write);
  }
  return dir;
}

void write_file(const fs::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

TEST(GenerateCliBadInput, MissingDirectory) {
  expect_one_line_error(generate_on("/nonexistent/model"), "/nonexistent/model");
}

TEST(GenerateCliBadInput, MissingConfigJson) {
  TempDir tmp;
  const auto dir = copy_checkpoint(tmp, "tiny-pythia");
  fs::remove(dir / "config.json");
  expect_one_line_error(generate_on(dir), "config.json");
}

TEST(GenerateCliBadInput, UnknownModelTypeListsSupportedFamilies) {
  TempDir tmp;
  const auto dir = copy_checkpoint(tmp, "tiny-pythia");
  Json config = llm::read_json_file(dir / "config.json");
  config["model_type"] = "mamba";
  config["architectures"] = {"MambaForCausalLM"};
  write_file(dir / "config.json", config.dump());
  const auto r = generate_on(dir);
  expect_one_line_error(r, "unknown model_type 'mamba'");
  EXPECT_NE(r.err.find("gpt_neox"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("llama"), std::string::npos) << r.err;
}

TEST(GenerateCliBadInput, MalformedConfigJson) {
  TempDir tmp;
  const auto dir = copy_checkpoint(tmp, "tiny-pythia");
  write_file(dir / "config.json", "{\"model_type\": \"gpt_neox\",");
  expect_one_line_error(generate_on(dir), "config.json");
}

TEST(GenerateCliBadInput, TruncatedSafetensors) {
  TempDir tmp;
  const auto dir = copy_checkpoint(tmp, "tiny-pythia");
  const std::string bytes = llm::test::read_file_bytes(dir / "model.safetensors");
  write_file(dir / "model.safetensors", bytes.substr(0, bytes.size() / 2));
  expect_one_line_error(generate_on(dir), "model.safetensors");
}

TEST(GenerateCliBadInput, AbsurdSafetensorsHeaderSize) {
  TempDir tmp;
  const auto dir = copy_checkpoint(tmp, "tiny-pythia");
  std::string bytes = llm::test::read_file_bytes(dir / "model.safetensors");
  const uint64_t absurd = uint64_t{1} << 60;
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((absurd >> (8 * i)) & 0xFF);
  write_file(dir / "model.safetensors", bytes);
  expect_one_line_error(generate_on(dir), "model.safetensors");
}

TEST(GenerateCliBadInput, SafetensorsOffsetsPastTheEndOfTheFile) {
  TempDir tmp;
  const auto dir = copy_checkpoint(tmp, "tiny-pythia");
  std::string bytes = llm::test::read_file_bytes(dir / "model.safetensors");
  uint64_t header_size = 0;
  for (int i = 0; i < 8; ++i) header_size |= uint64_t(uint8_t(bytes[i])) << (8 * i);
  Json header = Json::parse(bytes.substr(8, header_size));
  auto& entry = header["gpt_neox.embed_in.weight"];
  const uint64_t begin = entry["data_offsets"][0];
  const uint64_t end = entry["data_offsets"][1];
  entry["data_offsets"] = {begin + bytes.size(), end + bytes.size()};
  std::string new_header = header.dump();
  new_header.resize(header_size, ' ');  // keep the data section where it was
  ASSERT_EQ(new_header.size(), header_size);
  write_file(dir / "model.safetensors",
             bytes.substr(0, 8) + new_header + bytes.substr(8 + header_size));
  expect_one_line_error(generate_on(dir), "gpt_neox.embed_in.weight");
}

TEST(GenerateCliBadInput, TensorWithTheWrongShape) {
  TempDir tmp;
  const auto dir = copy_checkpoint(tmp, "tiny-pythia");
  Json config = llm::read_json_file(dir / "config.json");
  config["intermediate_size"] = 128;  // the checkpoint's MLP weights are 256 wide
  write_file(dir / "config.json", config.dump());
  expect_one_line_error(generate_on(dir), "dense_h_to_4h");
}

TEST(GenerateCliBadInput, PromptLongerThanTheContext) {
  std::string long_prompt;
  for (int i = 0; i < 200; ++i) long_prompt += " hello";
  expect_one_line_error(generate_on(data_dir() / "tiny-pythia", long_prompt), "--prompt");
}

TEST(GenerateCliBadInput, NegativeTemperature) {
  const auto r =
      run_llmhost({"--task", "generate", "--checkpoint_dir", (data_dir() / "tiny-pythia").string(),
                   "--prompt", "x", "--temperature", "-1"});
  expect_one_line_error({r.exit_code, r.err}, "--temperature");
}

}  // namespace
