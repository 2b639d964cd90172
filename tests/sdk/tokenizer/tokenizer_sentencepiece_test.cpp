// Sentencepiece (Llama) behaviour beyond the golden strings, especially what lm-eval's separate
// encoding of context and continuation relies on.
#include <algorithm>

#include <gtest/gtest.h>

#include "llm/error.hpp"
#include "llm/tokenizer.hpp"
#include "sdk/tokenizer/tokenizer_test_files.hpp"

namespace {

using llm::test::data_dir;

std::string joined_pieces(const llm::Tokenizer& tokenizer, const std::vector<int64_t>& ids) {
  std::string text;
  for (int64_t id : ids) text += tokenizer.token_text(id);
  return text;
}

const std::string kSpace = "\xE2\x96\x81";  // "▁"

TEST(TokenizerSentencePiece, LeadingSpaceKeepsTheDummyPrefixLikeLegacyHfLlama) {
  // HF LlamaTokenizer(legacy=True).encode(" 14", add_special_tokens=False) == spm.encode(" 14"):
  // the dummy prefix plus the text's own space, then the digits (split one by one).
  const auto tokenizer = llm::load_tokenizer(data_dir() / "tiny-llama");
  EXPECT_EQ(joined_pieces(*tokenizer, tokenizer->encode(" 14")), kSpace + kSpace + "14");
  EXPECT_EQ(joined_pieces(*tokenizer, tokenizer->encode("14")), kSpace + "14");
  EXPECT_EQ(tokenizer->decode(tokenizer->encode(" 14")), " 14");
}

TEST(TokenizerSentencePiece, NewlineUsesByteFallbackPiece) {
  const auto tokenizer = llm::load_tokenizer(data_dir() / "tiny-llama");
  const std::vector<int64_t> ids = tokenizer->encode("a\nb");
  std::vector<std::string> pieces;
  for (int64_t id : ids) pieces.push_back(tokenizer->token_text(id));
  EXPECT_NE(std::find(pieces.begin(), pieces.end(), "<0x0A>"), pieces.end());
  EXPECT_EQ(tokenizer->decode(ids), "a\nb");
}

TEST(TokenizerSentencePiece, DecodingAPartialCharacterGivesReplacementCharacter) {
  const auto tokenizer = llm::load_tokenizer(data_dir() / "tiny-llama");
  const std::vector<int64_t> ids = tokenizer->encode("\xF0\x9F\x9A\x80");  // 🚀, byte pieces
  ASSERT_GE(ids.size(), 4u);
  const std::vector<int64_t> truncated(ids.begin(), ids.end() - 1);
  EXPECT_EQ(tokenizer->decode(truncated).find("\xF0\x9F\x9A"), std::string::npos);
  EXPECT_NE(tokenizer->decode(truncated).find("\xEF\xBF\xBD"), std::string::npos);
  EXPECT_EQ(tokenizer->decode(ids), "\xF0\x9F\x9A\x80");
}

TEST(TokenizerSentencePiece, InvalidUtf8InputDoesNotCrash) {
  const auto tokenizer = llm::load_tokenizer(data_dir() / "tiny-llama");
  EXPECT_EQ(tokenizer->encode("a\xFF"), tokenizer->encode("a\xEF\xBF\xBD"));
}

TEST(TokenizerSentencePiece, TokenTextIsThePieceSpelling) {
  const auto tokenizer = llm::load_tokenizer(data_dir() / "tiny-llama");
  EXPECT_EQ(tokenizer->token_text(0), "<unk>");
  EXPECT_EQ(tokenizer->token_text(1), "<s>");
  EXPECT_EQ(tokenizer->token_text(2), "</s>");
  EXPECT_THROW(tokenizer->token_text(tokenizer->vocab_size()), llm::UserError);
}

}  // namespace
