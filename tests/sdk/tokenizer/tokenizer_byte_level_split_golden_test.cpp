// Byte-level tokenizer.json files with their own split patterns, trained by `tokenizers`: Llama 3's
// (digit groups of three, BOS from the post-processor) and Qwen2's (single digits, NFC, no BOS).
// Every hard string gives the reference ids, ids with special tokens, and decode.
#include <gtest/gtest.h>

#include "llm/tokenizer.hpp"
#include "sdk/tokenizer/tokenizer_test_files.hpp"

namespace {

using llm::test::data_dir;
using Ids = std::vector<int64_t>;

void expect_matches_golden(const std::string& checkpoint) {
  const auto tokenizer = llm::load_tokenizer(data_dir() / checkpoint);
  EXPECT_EQ(tokenizer->kind(), "byte-level-bpe");
  const auto golden = llm::test::read_json(data_dir() / "golden" / (checkpoint + ".json"));
  const auto& cases = golden.at("tokenizer_cases");
  ASSERT_EQ(cases.size(), 15u);
  for (const auto& c : cases) {
    const std::string text = c.at("text");
    const Ids ids = c.at("ids");
    EXPECT_EQ(tokenizer->encode(text), ids) << text;
    EXPECT_EQ(tokenizer->encode_for_model(text), c.at("ids_with_special").get<Ids>()) << text;
    EXPECT_EQ(tokenizer->decode(ids), c.at("decoded").get<std::string>()) << text;
  }
}

TEST(TokenizerByteLevelSplitGolden, Llama3StyleTokenizerJsonMatchesTokenizers) {
  expect_matches_golden("tiny-llama3");
}

TEST(TokenizerByteLevelSplitGolden, Qwen2StyleTokenizerJsonMatchesTokenizers) {
  expect_matches_golden("tiny-qwen2");
  EXPECT_FALSE(llm::load_tokenizer(data_dir() / "tiny-qwen2")->adds_bos());
}

}  // namespace
