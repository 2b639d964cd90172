// Byte-level BPE with the file's own Split pattern (Llama 3, Qwen2) instead of GPT-2's, and BOS
// from the post-processor template: a hand-made vocabulary where whole words are tokens
// (ignore_merges), so the ids show where the pattern cut.
#include <gtest/gtest.h>

#include "llm/error.hpp"
#include "llm/tokenizer.hpp"
#include "sdk/tokenizer/tokenizer_test_files.hpp"

namespace {

using nlohmann::json;
using Ids = std::vector<int64_t>;

// Llama 3's pattern, as its tokenizer.json holds it.
const std::string kLlama3Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

std::string utf8(char32_t c) {
  std::string out;
  if (c < 0x80) {
    out += static_cast<char>(c);
  } else {
    out += static_cast<char>(0xC0 | (c >> 6));
    out += static_cast<char>(0x80 | (c & 0x3F));
  }
  return out;
}

// GPT-2's bytes_to_unicode: byte b is the token with id b.
json byte_alphabet_vocab() {
  std::vector<int> printable;
  for (int b = 33; b <= 126; ++b) printable.push_back(b);
  for (int b = 161; b <= 172; ++b) printable.push_back(b);
  for (int b = 174; b <= 255; ++b) printable.push_back(b);
  json vocab = json::object();
  int extra = 0;
  for (int b = 0; b < 256; ++b) {
    const bool direct = std::find(printable.begin(), printable.end(), b) != printable.end();
    vocab[utf8(direct ? static_cast<char32_t>(b) : static_cast<char32_t>(256 + extra++))] = b;
  }
  return vocab;
}

constexpr int64_t k123 = 256, k456 = 257, kDON = 258, kQuoteT = 259, kBeginOfText = 260;

json llama3_style_tokenizer_json() {
  json vocab = byte_alphabet_vocab();
  vocab["123"] = k123;
  vocab["456"] = k456;
  vocab["DON"] = kDON;
  vocab["'T"] = kQuoteT;
  return {
      {"version", "1.0"},
      {"added_tokens", json::array({{{"id", kBeginOfText},
                                     {"content", "<|begin_of_text|>"},
                                     {"single_word", false},
                                     {"lstrip", false},
                                     {"rstrip", false},
                                     {"normalized", false},
                                     {"special", true}}})},
      {"normalizer", nullptr},
      {"pre_tokenizer",
       {{"type", "Sequence"},
        {"pretokenizers", json::array({{{"type", "Split"},
                                        {"pattern", {{"Regex", kLlama3Pattern}}},
                                        {"behavior", "Isolated"},
                                        {"invert", false}},
                                       {{"type", "ByteLevel"},
                                        {"add_prefix_space", false},
                                        {"trim_offsets", true},
                                        {"use_regex", false}}})}}},
      {"post_processor",
       {{"type", "Sequence"},
        {"processors",
         json::array({{{"type", "ByteLevel"}, {"trim_offsets", false}},
                      {{"type", "TemplateProcessing"},
                       {"single", json::array({{{"SpecialToken",
                                                 {{"id", "<|begin_of_text|>"}, {"type_id", 0}}}},
                                               {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}})},
                       {"pair", json::array()},
                       {"special_tokens",
                        {{"<|begin_of_text|>",
                          {{"id", "<|begin_of_text|>"},
                           {"ids", json::array({kBeginOfText})},
                           {"tokens", json::array({"<|begin_of_text|>"})}}}}}}})}}},
      {"decoder", {{"type", "ByteLevel"}}},
      {"model",
       {{"type", "BPE"},
        {"dropout", nullptr},
        {"unk_token", nullptr},
        {"fuse_unk", false},
        {"byte_fallback", false},
        {"ignore_merges", true},
        {"vocab", vocab},
        {"merges", json::array()}}}};
}

std::unique_ptr<llm::Tokenizer> load(const json& tokenizer_json,
                                     const json& tokenizer_config = nullptr) {
  llm::test::TempDir dir;
  llm::test::write_json(dir.path() / "tokenizer.json", tokenizer_json);
  if (!tokenizer_config.is_null()) {
    llm::test::write_json(dir.path() / "tokenizer_config.json", tokenizer_config);
  }
  return llm::load_tokenizer(dir.path());
}

Ids bytes_of(const std::string& text) {
  Ids ids;
  for (const char c : text) ids.push_back(static_cast<unsigned char>(c));
  return ids;
}

TEST(TokenizerByteLevelSplit, TheFilesSplitPatternCutsDigitsInThrees) {
  const auto tokenizer = load(llama3_style_tokenizer_json());
  EXPECT_EQ(tokenizer->kind(), "byte-level-bpe");
  EXPECT_EQ(tokenizer->encode("1234567"), (Ids{k123, k456, '7'}));
  // GPT-2's pattern (ByteLevel with use_regex, no Split) keeps the digit run whole: no such token.
  json gpt2 = llama3_style_tokenizer_json();
  gpt2["pre_tokenizer"] = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}};
  EXPECT_EQ(load(gpt2)->encode("1234567"), bytes_of("1234567"));
}

TEST(TokenizerByteLevelSplit, Llama3ContractionsIgnoreCase) {
  EXPECT_EQ(load(llama3_style_tokenizer_json())->encode("DON'T"), (Ids{kDON, kQuoteT}));
  json gpt2 = llama3_style_tokenizer_json();
  gpt2["pre_tokenizer"] = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}};
  EXPECT_EQ(load(gpt2)->encode("DON'T"), (Ids{kDON, '\'', 'T'}));
}

TEST(TokenizerByteLevelSplit, TextRoundTripsThroughTheSplitPipeline) {
  const auto tokenizer = load(llama3_style_tokenizer_json());
  const std::string text = "Ünïcödé 東京 🚀\n\n  x 1234567\tDON'T";
  EXPECT_EQ(tokenizer->decode(tokenizer->encode(text)), text);
}

TEST(TokenizerByteLevelSplit, PostProcessorTemplateAddsBeginOfText) {
  const auto tokenizer =
      load(llama3_style_tokenizer_json(),
           {{"bos_token", "<|begin_of_text|>"}, {"tokenizer_class", "PreTrainedTokenizerFast"}});
  EXPECT_TRUE(tokenizer->adds_bos());
  EXPECT_EQ(tokenizer->bos_id(), kBeginOfText);
  EXPECT_EQ(tokenizer->encode_for_model("123"), (Ids{kBeginOfText, k123}));
  EXPECT_EQ(tokenizer->encode("<|begin_of_text|>123"), (Ids{kBeginOfText, k123}));
}

TEST(TokenizerByteLevelSplit, UnsupportedSplitsAreUserErrorsNamingTheFile) {
  const auto error = [](const json& j) {
    try {
      load(j);
    } catch (const llm::UserError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  json j = llama3_style_tokenizer_json();
  j["pre_tokenizer"]["pretokenizers"][0]["behavior"] = "Removed";
  std::string message = error(j);
  EXPECT_NE(message.find("tokenizer.json"), std::string::npos) << message;
  EXPECT_NE(message.find("'Split' with behavior 'Removed'"), std::string::npos) << message;

  j = llama3_style_tokenizer_json();
  j["pre_tokenizer"]["pretokenizers"][0]["pattern"] = {{"Regex", "(unclosed"}};
  message = error(j);
  EXPECT_NE(message.find("tokenizer.json"), std::string::npos) << message;
  EXPECT_NE(message.find("(unclosed"), std::string::npos) << message;

  j = llama3_style_tokenizer_json();
  j["pre_tokenizer"]["pretokenizers"][0] = {{"type", "Digits"}, {"individual_digits", true}};
  message = error(j);
  EXPECT_NE(message.find("pre_tokenizer 'Digits'"), std::string::npos) << message;
}

}  // namespace
