// BOS/EOS from tokenizer_config.json and special-token text inside the input.
#include <gtest/gtest.h>

#include "llm/error.hpp"
#include "llm/tokenizer.hpp"
#include "sdk/tokenizer/tokenizer_test_files.hpp"

namespace {

namespace fs = std::filesystem;
using llm::test::data_dir;

std::vector<int64_t> concat(std::vector<int64_t> a, const std::vector<int64_t>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

TEST(TokenizerSpecialTokens, LlamaEncodeForModelPrependsBos) {
  const auto tokenizer = llm::load_tokenizer(data_dir() / "tiny-llama");
  EXPECT_TRUE(tokenizer->adds_bos());
  EXPECT_FALSE(tokenizer->adds_eos());
  EXPECT_EQ(tokenizer->bos_id(), 1);
  EXPECT_EQ(tokenizer->eos_id(), 2);
  EXPECT_EQ(tokenizer->encode_for_model("Hello world"),
            concat({1}, tokenizer->encode("Hello world")));
  EXPECT_EQ(tokenizer->encode_for_model("Hello world", /*append_eos=*/true),
            concat(concat({1}, tokenizer->encode("Hello world")), {2}));
}

TEST(TokenizerSpecialTokens, PythiaEncodeForModelAddsNoBos) {
  const auto tokenizer = llm::load_tokenizer(data_dir() / "tiny-pythia");
  EXPECT_FALSE(tokenizer->adds_bos());
  EXPECT_EQ(tokenizer->bos_id(), 0);
  EXPECT_EQ(tokenizer->eos_id(), 0);
  EXPECT_EQ(tokenizer->encode_for_model("Hello world"), tokenizer->encode("Hello world"));
  EXPECT_EQ(tokenizer->encode_for_model("Hello world", true),
            concat(tokenizer->encode("Hello world"), {0}));
}

TEST(TokenizerSpecialTokens, DirectoryWithOnlyTokenizerModelWorksWithoutBos) {
  llm::test::TempDir dir;
  fs::copy_file(data_dir() / "tiny-llama" / "tokenizer.model", dir.path() / "tokenizer.model");
  const auto tokenizer = llm::load_tokenizer(dir.path());
  EXPECT_FALSE(tokenizer->adds_bos());
  EXPECT_EQ(tokenizer->bos_id(), 1);  // the model's own <s>
  EXPECT_EQ(tokenizer->eos_id(), 2);
  EXPECT_EQ(tokenizer->encode_for_model("Hello"), tokenizer->encode("Hello"));
}

TEST(TokenizerSpecialTokens, DirectoryWithOnlyTokenizerJsonWorks) {
  llm::test::TempDir dir;
  fs::copy_file(data_dir() / "tiny-pythia" / "tokenizer.json", dir.path() / "tokenizer.json");
  const auto tokenizer = llm::load_tokenizer(dir.path());
  EXPECT_FALSE(tokenizer->adds_bos());
  EXPECT_EQ(tokenizer->encode("Hello world"),
            llm::load_tokenizer(data_dir() / "tiny-pythia")->encode("Hello world"));
}

TEST(TokenizerSpecialTokens, ConfigTokensGivenAsAddedTokenObjectsResolve) {
  llm::test::TempDir dir;
  fs::copy_file(data_dir() / "tiny-llama" / "tokenizer.model", dir.path() / "tokenizer.model");
  llm::test::write_json(dir.path() / "tokenizer_config.json",
                        {{"add_bos_token", true},
                         {"add_eos_token", true},
                         {"bos_token", {{"content", "<s>"}, {"special", true}}},
                         {"eos_token", {{"content", "</s>"}, {"special", true}}}});
  const auto tokenizer = llm::load_tokenizer(dir.path());
  const std::vector<int64_t> body = tokenizer->encode("a");
  EXPECT_EQ(tokenizer->encode_for_model("a"), concat(concat({1}, body), {2}));
}

TEST(TokenizerSpecialTokens, BosMissingFromTokenizerConfigFallsBackToConfigJson) {
  llm::test::TempDir dir;
  fs::copy_file(data_dir() / "tiny-pythia" / "tokenizer.json", dir.path() / "tokenizer.json");
  llm::test::write_json(dir.path() / "tokenizer_config.json", {{"add_bos_token", true}});
  llm::test::write_json(dir.path() / "config.json", {{"bos_token_id", 1}, {"eos_token_id", 0}});
  const auto tokenizer = llm::load_tokenizer(dir.path());
  EXPECT_EQ(tokenizer->bos_id(), 1);
  EXPECT_EQ(tokenizer->eos_id(), 0);
  EXPECT_EQ(tokenizer->encode_for_model("a"), concat({1}, tokenizer->encode("a")));
}

TEST(TokenizerSpecialTokens, AddBosWithUnknownBosTokenIsAUserError) {
  llm::test::TempDir dir;
  fs::copy_file(data_dir() / "tiny-pythia" / "tokenizer.json", dir.path() / "tokenizer.json");
  llm::test::write_json(dir.path() / "tokenizer_config.json",
                        {{"add_bos_token", true}, {"bos_token", "<no-such-token>"}});
  try {
    llm::load_tokenizer(dir.path());
    FAIL() << "expected UserError";
  } catch (const llm::UserError& e) {
    EXPECT_NE(std::string(e.what()).find("tokenizer_config.json"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("<no-such-token>"), std::string::npos) << e.what();
  }
}

TEST(TokenizerSpecialTokens, SpecialTokenTextInInputBecomesItsId) {
  const auto pythia = llm::load_tokenizer(data_dir() / "tiny-pythia");
  EXPECT_EQ(pythia->encode("Hello<|endoftext|>world"),
            concat(concat(pythia->encode("Hello"), {0}), pythia->encode("world")));
  const auto llama = llm::load_tokenizer(data_dir() / "tiny-llama");
  // Legacy HF Llama: each text segment is encoded on its own (with its own dummy prefix).
  EXPECT_EQ(llama->encode("Hello</s>world"),
            concat(concat(llama->encode("Hello"), {2}), llama->encode("world")));
}

TEST(TokenizerSpecialTokens, DecodeKeepsSpecialTokensUnlessAskedToSkip) {
  const auto llama = llm::load_tokenizer(data_dir() / "tiny-llama");
  const std::vector<int64_t> llama_ids = llama->encode_for_model("Hello world", true);
  EXPECT_EQ(llama->decode(llama_ids), "<s> Hello world</s>");
  EXPECT_EQ(llama->decode(llama_ids, /*skip_special_tokens=*/true), "Hello world");

  const auto pythia = llm::load_tokenizer(data_dir() / "tiny-pythia");
  const std::vector<int64_t> pythia_ids = pythia->encode_for_model("Hello world", true);
  EXPECT_EQ(pythia->decode(pythia_ids), "Hello world<|endoftext|>");
  EXPECT_EQ(pythia->decode(pythia_ids, true), "Hello world");
}

TEST(TokenizerSpecialTokens, AppendEosWithoutAnyEosTokenIsAUserError) {
  llm::test::TempDir dir;
  auto tokenizer_json = llm::test::pythia_tokenizer_json();
  llm::test::write_json(dir.path() / "tokenizer.json", tokenizer_json);
  const auto tokenizer = llm::load_tokenizer(dir.path());
  EXPECT_FALSE(tokenizer->eos_id().has_value());
  EXPECT_THROW(tokenizer->encode_for_model("a", true), llm::UserError);
}

}  // namespace
