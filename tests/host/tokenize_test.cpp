// tokenize through the binary: ids/tokens/decoded JSON, BOS per tokenizer config, tokenizer-only
// dirs.
#include <gtest/gtest.h>

#include "llm/json_file.hpp"
#include "support/test_support.hpp"

namespace {

namespace fs = std::filesystem;
using llm::Json;
using llm::test::data_dir;
using llm::test::run_llmhost;

Json tokenize(const fs::path& dir, const std::string& text) {
  const auto r = run_llmhost(
      {"--task", "tokenize", "--checkpoint_dir", dir.string(), "--text", text, "--format", "json"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return r.exit_code == 0 ? Json::parse(r.out) : Json::object();
}

TEST(TokenizeCli, PythiaIdsMatchTheGoldenWithoutBos) {
  const Json golden = llm::read_json_file(data_dir() / "golden/tokenizers.json");
  const Json& hello = golden["bpe_tiny_pythia"][0];
  const Json out = tokenize(data_dir() / "tiny-pythia", hello["text"]);
  EXPECT_EQ(out["ids"], hello["ids"]);
  EXPECT_EQ(out["decoded"], hello["decoded"]);
  EXPECT_EQ(out["tokens"].size(), hello["ids"].size());
}

TEST(TokenizeCli, LlamaPrependsBosAsItsTokenizerConfigSays) {
  const Json golden = llm::read_json_file(data_dir() / "golden/tokenizers.json");
  const Json& hello = golden["spm_tiny_llama"][0];
  const Json out = tokenize(data_dir() / "tiny-llama", hello["text"]);
  Json expected = Json::array({1});
  for (const auto& id : hello["ids"]) expected.push_back(id);
  EXPECT_EQ(out["ids"], expected);
  EXPECT_EQ(out["tokens"][0], "<s>");
}

TEST(TokenizeCli, WorksOnADirectoryHoldingOnlyTokenizerFiles) {
  llm::test::TempDir tmp;
  for (const char* f : {"tokenizer.json", "tokenizer_config.json"}) {
    fs::copy_file(data_dir() / "tiny-pythia" / f, tmp.path() / f);
  }
  const Json out = tokenize(tmp.path(), "Hello world");
  EXPECT_EQ(out["decoded"], "Hello world");
}

TEST(TokenizeCli, DirectoryWithoutTokenizerFilesIsExitTwo) {
  llm::test::TempDir tmp;
  const auto r =
      run_llmhost({"--task", "tokenize", "--checkpoint_dir", tmp.path().string(), "--text", "x"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("tokenizer"), std::string::npos) << r.err;
}

}  // namespace
