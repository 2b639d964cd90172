// tiny-llama's sentencepiece model as transformers / tokenizers write it into tokenizer.json (the
// Llama 2 "legacy" layout, the Metaspace layout, and what transformers 5 itself saves), loaded
// from directories without tokenizer.model: the reference ids and decodes of every hard string,
// and the sentencepiece model's own ids.
#include <gtest/gtest.h>

#include <fstream>

#include "llm/tokenizer.hpp"
#include "sdk/tokenizer/tokenizer_test_files.hpp"

namespace {

using llm::test::data_dir;
using Ids = std::vector<int64_t>;

void collect_strings(const nlohmann::json& value, std::vector<std::string>& out) {
  if (value.is_string()) out.push_back(value.get<std::string>());
  if (value.is_structured()) {
    for (const auto& item : value) collect_strings(item, out);
  }
}

nlohmann::json golden() {
  return llm::test::read_json(data_dir() / "golden" / "tiny-llama-tokjson.json");
}

TEST(TokenizerLlamaJsonGolden, EveryLayoutMatchesTokenizersIdsAndDecodes) {
  const auto layouts = golden().at("tokenizers");
  ASSERT_EQ(layouts.size(), 3u);
  for (const auto& [layout, expected] : layouts.items()) {
    SCOPED_TRACE(layout);
    ASSERT_FALSE(std::filesystem::exists(data_dir() / layout / "tokenizer.model"));
    const auto tokenizer = llm::load_tokenizer(data_dir() / layout);
    EXPECT_EQ(tokenizer->kind(), "sentencepiece-bpe");
    EXPECT_EQ(tokenizer->vocab_size(), 1024);
    const auto& cases = expected.at("cases");
    ASSERT_EQ(cases.size(), 10u);
    for (const auto& c : cases) {
      const std::string text = c.at("text");
      const Ids ids = c.at("ids");
      EXPECT_EQ(tokenizer->encode(text), ids) << text;
      EXPECT_EQ(tokenizer->encode_for_model(text), c.at("ids_with_special").get<Ids>()) << text;
      EXPECT_EQ(tokenizer->decode(ids), c.at("decoded").get<std::string>()) << text;
    }
  }
}

TEST(TokenizerLlamaJsonGolden, LlamaStyleTokenizerJsonGivesTheSentencePieceModelsIds) {
  const auto json_tokenizer = llm::load_tokenizer(data_dir() / "tiny-llama-tokjson");
  const auto spm = llm::load_tokenizer(data_dir() / "tiny-llama");
  ASSERT_EQ(spm->kind(), "sentencepiece");
  for (const auto& c : llm::test::golden_tokenizer_cases("spm_tiny_llama")) {
    const std::string text = c.at("text");
    EXPECT_EQ(json_tokenizer->encode(text), c.at("ids").get<Ids>()) << text;
    EXPECT_EQ(json_tokenizer->encode_for_model(text), spm->encode_for_model(text)) << text;
  }
  EXPECT_EQ(json_tokenizer->bos_id(), spm->bos_id());
  EXPECT_EQ(json_tokenizer->eos_id(), spm->eos_id());
  EXPECT_EQ(json_tokenizer->vocab_size(), spm->vocab_size());
}

TEST(TokenizerLlamaJsonGolden, LegacyLayoutAgreesWithSentencePieceOnLongerText) {
  // Every text field of the eval fixtures (prose, digits, punctuation, non-ASCII, newlines): the
  // tokenizer.json pipeline and libsentencepiece on the same vocabulary give the same ids.
  const auto json_tokenizer = llm::load_tokenizer(data_dir() / "tiny-llama-tokjson");
  const auto spm = llm::load_tokenizer(data_dir() / "tiny-llama");
  std::vector<std::string> texts;
  for (const auto& entry : std::filesystem::directory_iterator(data_dir() / "eval-data")) {
    std::ifstream in(entry.path());
    for (std::string line; std::getline(in, line);) {
      collect_strings(nlohmann::json::parse(line), texts);
    }
  }
  EXPECT_GT(texts.size(), 50u);
  for (const std::string& text : texts) {
    ASSERT_EQ(json_tokenizer->encode(text), spm->encode(text)) << text;
  }
}

}  // namespace
