// Parity with the reference tokenizers: every golden string, ids and decoded text, exactly.
#include <gtest/gtest.h>

#include "llm/tokenizer.hpp"
#include "sdk/tokenizer/tokenizer_test_files.hpp"

namespace {

using llm::test::data_dir;

void expect_matches_golden(const std::string& golden_key, const std::string& checkpoint,
                           const std::string& expected_kind) {
  const auto tokenizer = llm::load_tokenizer(data_dir() / checkpoint);
  EXPECT_EQ(tokenizer->kind(), expected_kind);
  const nlohmann::json cases = llm::test::golden_tokenizer_cases(golden_key);
  ASSERT_EQ(cases.size(), 10u);
  for (const auto& golden : cases) {
    const std::string text = golden.at("text");
    const std::vector<int64_t> expected_ids = golden.at("ids");
    EXPECT_EQ(tokenizer->encode(text), expected_ids) << "text: " << text;
    EXPECT_EQ(tokenizer->decode(expected_ids), golden.at("decoded").get<std::string>())
        << "text: " << text;
  }
}

TEST(TokenizerGolden, PythiaByteLevelBpeMatchesReferenceIdsAndDecoding) {
  expect_matches_golden("bpe_tiny_pythia", "tiny-pythia", "byte-level-bpe");
}

TEST(TokenizerGolden, LlamaSentencePieceMatchesReferenceIdsAndDecoding) {
  expect_matches_golden("spm_tiny_llama", "tiny-llama", "sentencepiece");
}

TEST(TokenizerGolden, VocabularySizesMatchTheModelsEmbeddingRows) {
  for (const char* checkpoint : {"tiny-pythia", "tiny-llama"}) {
    const auto config = llm::test::read_json(data_dir() / checkpoint / "config.json");
    EXPECT_EQ(llm::load_tokenizer(data_dir() / checkpoint)->vocab_size(),
              config.at("vocab_size").get<int64_t>())
        << checkpoint;
  }
}

}  // namespace
