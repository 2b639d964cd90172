// The sentencepiece-style tokenizer.json (Llama 2 / Mistral layout, no tokenizer.model): each
// component on a hand-made vocabulary whose expected ids follow from `tokenizers`' rules.
#include <gtest/gtest.h>

#include "llm/error.hpp"
#include "llm/tokenizer.hpp"
#include "sdk/tokenizer/tokenizer_test_files.hpp"

namespace {

using nlohmann::json;

const std::string kSpace = "\xE2\x96\x81";  // U+2581, sentencepiece's space

// <unk>=0 <s>=1 </s>=2, <0x00>..<0xFF> = 3..258, then pieces and their merges.
json llama_style_tokenizer_json() {
  json vocab = json::object();
  vocab["<unk>"] = 0;
  vocab["<s>"] = 1;
  vocab["</s>"] = 2;
  for (int byte = 0; byte < 256; ++byte) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", byte);
    vocab[name] = 3 + byte;
  }
  int64_t next = 259;
  for (const std::string& piece :
       std::vector<std::string>{kSpace, "a", "b", "c", "h", "i", kSpace + "a", "ab", kSpace + "ab",
                                "hi", kSpace + "hi"}) {
    vocab[piece] = next++;
  }
  const json merges = json::array({json::array({kSpace, "a"}), json::array({"a", "b"}),
                                   json::array({kSpace + "a", "b"}), json::array({"h", "i"}),
                                   json::array({kSpace, "hi"})});
  json added = json::array();
  const std::vector<std::pair<std::string, int>> specials = {{"<unk>", 0}, {"<s>", 1}, {"</s>", 2}};
  for (const auto& [content, id] : specials) {
    added.push_back({{"id", id},
                     {"content", content},
                     {"single_word", false},
                     {"lstrip", false},
                     {"rstrip", false},
                     {"normalized", false},
                     {"special", true}});
  }
  return {
      {"version", "1.0"},
      {"added_tokens", added},
      {"normalizer",
       {{"type", "Sequence"},
        {"normalizers",
         json::array(
             {{{"type", "Prepend"}, {"prepend", kSpace}},
              {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", kSpace}}})}}},
      {"pre_tokenizer", nullptr},
      {"post_processor",
       {{"type", "TemplateProcessing"},
        {"single", json::array({{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}},
                                {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}})},
        {"pair", json::array()},
        {"special_tokens",
         {{"<s>", {{"id", "<s>"}, {"ids", json::array({1})}, {"tokens", json::array({"<s>"})}}}}}}},
      {"decoder",
       {{"type", "Sequence"},
        {"decoders",
         json::array({{{"type", "Replace"}, {"pattern", {{"String", kSpace}}}, {"content", " "}},
                      {{"type", "ByteFallback"}},
                      {{"type", "Fuse"}},
                      {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}})}}},
      {"model",
       {{"type", "BPE"},
        {"dropout", nullptr},
        {"unk_token", "<unk>"},
        {"continuing_subword_prefix", nullptr},
        {"end_of_word_suffix", nullptr},
        {"fuse_unk", true},
        {"byte_fallback", true},
        {"ignore_merges", false},
        {"vocab", vocab},
        {"merges", merges}}}};
}

json metaspace_layout(const std::string& prepend_scheme, bool split) {
  json j = llama_style_tokenizer_json();
  j["normalizer"] = nullptr;
  j["pre_tokenizer"] = {{"type", "Metaspace"},
                        {"replacement", kSpace},
                        {"prepend_scheme", prepend_scheme},
                        {"split", split}};
  return j;
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

std::string load_error(const json& tokenizer_json) {
  try {
    load(tokenizer_json);
  } catch (const llm::UserError& e) {
    return e.what();
  }
  return "";
}

using Ids = std::vector<int64_t>;
// Ids of the hand-made vocabulary.
constexpr int64_t kUnk = 0, kBos = 1, kSp = 259, kA = 260, kB = 261, kC = 262, kH = 263, kSpA = 265,
                  kAb = 266, kSpAb = 267, kHi = 268, kSpHi = 269;
int64_t byte_id(int byte) { return 3 + byte; }

TEST(TokenizerMetaspaceBpe, LoadsWithoutTokenizerModelAsSentencepieceStyleBpe) {
  const auto tokenizer = load(llama_style_tokenizer_json());
  EXPECT_EQ(tokenizer->kind(), "sentencepiece-bpe");
  EXPECT_EQ(tokenizer->vocab_size(), 270);
}

TEST(TokenizerMetaspaceBpe, PrependAndReplaceNormalizersTurnSpacesIntoMetaspaces) {
  const auto tokenizer = load(llama_style_tokenizer_json());
  // "ab hi" -> "▁ab▁hi": merges ▁+a, a+b?, (▁a)+b, h+i, ▁+hi by rank.
  EXPECT_EQ(tokenizer->encode("ab hi"), (Ids{kSpAb, kSpHi}));
  // Prepend is unconditional (legacy layout): a leading space gives two metaspaces.
  EXPECT_EQ(tokenizer->encode(" ab"), (Ids{kSp, kSpAb}));
  EXPECT_EQ(tokenizer->encode(""), Ids{});
}

TEST(TokenizerMetaspaceBpe, MergesApplyByRankNotLength) {
  const auto tokenizer = load(llama_style_tokenizer_json());
  // "▁abab": ▁+a (rank 0) first, then a+b (rank 1) on the second pair, then ▁a+b (rank 2).
  EXPECT_EQ(tokenizer->encode("abab"), (Ids{kSpAb, kAb}));
  EXPECT_EQ(tokenizer->encode("c"), (Ids{kSp, kC}));
}

TEST(TokenizerMetaspaceBpe, MergesWrittenAsStringsGiveTheSameIds) {
  json strings = llama_style_tokenizer_json();
  json merges = json::array();
  for (const auto& pair : strings["model"]["merges"]) {
    merges.push_back(pair[0].get<std::string>() + " " + pair[1].get<std::string>());
  }
  strings["model"]["merges"] = merges;
  const auto pairs = load(llama_style_tokenizer_json());
  const auto spelled = load(strings);
  for (const std::string text : {"ab hi", "abab hi c", " a b "}) {
    EXPECT_EQ(spelled->encode(text), pairs->encode(text)) << text;
  }
}

TEST(TokenizerMetaspaceBpe, CharactersOutsideTheVocabularyFallBackToUtf8ByteTokens) {
  const auto tokenizer = load(llama_style_tokenizer_json());
  // "é" is C3 A9; "🚀" is F0 9F 9A 80; "x" is 78.
  EXPECT_EQ(tokenizer->encode("\xC3\xA9"), (Ids{kSp, byte_id(0xC3), byte_id(0xA9)}));
  EXPECT_EQ(tokenizer->encode("a\xF0\x9F\x9A\x80x"),
            (Ids{kSpA, byte_id(0xF0), byte_id(0x9F), byte_id(0x9A), byte_id(0x80), byte_id(0x78)}));
}

TEST(TokenizerMetaspaceBpe, WithoutByteFallbackUnknownCharactersShareOneFusedUnk) {
  json j = llama_style_tokenizer_json();
  j["model"]["byte_fallback"] = false;
  EXPECT_EQ(load(j)->encode("xyz a"), (Ids{kSp, kUnk, kSpA}));
  j["model"]["fuse_unk"] = false;
  EXPECT_EQ(load(j)->encode("xyz a"), (Ids{kSp, kUnk, kUnk, kUnk, kSpA}));
}

TEST(TokenizerMetaspaceBpe, SpecialTokensInTheTextMapToTheirIds) {
  const auto tokenizer = load(llama_style_tokenizer_json());
  // The normalizer runs on each piece between added tokens (transformers' "legacy" behaviour).
  EXPECT_EQ(tokenizer->encode("<s>ab</s>"), (Ids{kBos, kSpAb, 2}));
}

TEST(TokenizerMetaspaceBpe, MetaspacePreTokenizerPrependsOnlyAtTheStartWithSchemeFirst) {
  const auto first = load(metaspace_layout("first", false));
  EXPECT_EQ(first->encode("ab hi"), (Ids{kSpAb, kSpHi}));
  // Unlike Prepend, Metaspace does not add a second metaspace before a leading space.
  EXPECT_EQ(first->encode(" ab"), (Ids{kSpAb}));
  // After a special token the text is not at the start of the input: no prepended metaspace.
  EXPECT_EQ(first->encode("<s>ab"), (Ids{kBos, kAb}));
  const auto always = load(metaspace_layout("always", false));
  EXPECT_EQ(always->encode("<s>ab"), (Ids{kBos, kSpAb}));
  const auto never = load(metaspace_layout("never", false));
  EXPECT_EQ(never->encode("ab hi"), (Ids{kAb, kSpHi}));
}

TEST(TokenizerMetaspaceBpe, MetaspaceSplitKeepsMergesWithinWords) {
  // With split, "▁a▁▁b" is the words "▁a", "▁", "▁b": no merge crosses a word boundary.
  json j = metaspace_layout("always", true);
  EXPECT_EQ(load(j)->encode("a  b"), (Ids{kSpA, kSp, kSp, kB}));
  j["pre_tokenizer"]["split"] = false;
  EXPECT_EQ(load(j)->encode("a  b"), (Ids{kSpA, kSp, kSp, kB}));
  EXPECT_EQ(load(j)->encode("hi ab"), (Ids{kSpHi, kSpAb}));
}

TEST(TokenizerMetaspaceBpe, DecodersReplaceFuseBytesAndStripTheFirstSpace) {
  const auto tokenizer = load(llama_style_tokenizer_json());
  EXPECT_EQ(tokenizer->decode({kSpAb, kSpHi}), "ab hi");
  EXPECT_EQ(tokenizer->decode({kSp, kSpAb}), " ab");  // Strip removes one space only
  EXPECT_EQ(tokenizer->decode({kSpA, byte_id(0xC3), byte_id(0xA9), kB}),
            "a\xC3\xA9"
            "b");
  // Bytes that are not UTF-8 become one U+FFFD each.
  EXPECT_EQ(tokenizer->decode({kSpA, byte_id(0xC3), kSpA}), "a\xEF\xBF\xBD a");
  // Special tokens are tokens like others unless skipped.
  EXPECT_EQ(tokenizer->decode({kBos, kSpAb}), "<s> ab");
  EXPECT_EQ(tokenizer->decode({kBos, kSpAb}, true), "ab");
  EXPECT_THROW(tokenizer->decode({270}), llm::UserError);
}

TEST(TokenizerMetaspaceBpe, MetaspaceDecoderDropsTheFirstTokensMetaspaces) {
  json j = metaspace_layout("first", false);
  j["decoder"] = {{"type", "Metaspace"},
                  {"replacement", kSpace},
                  {"prepend_scheme", "first"},
                  {"split", false}};
  const auto tokenizer = load(j);
  EXPECT_EQ(tokenizer->decode({kSpAb, kSpHi}), "ab hi");
  EXPECT_EQ(tokenizer->decode({kSp, kSpAb}), " ab");  // the first token's metaspace alone goes
}

TEST(TokenizerMetaspaceBpe, PostProcessorTemplateAddsBos) {
  const auto tokenizer = load(llama_style_tokenizer_json());
  EXPECT_TRUE(tokenizer->adds_bos());
  EXPECT_EQ(tokenizer->bos_id(), kBos);
  EXPECT_EQ(tokenizer->encode_for_model("ab"), (Ids{kBos, kSpAb}));
  // tokenizer_config.json's add_bos_token has the last word, as in transformers.
  const auto without = load(llama_style_tokenizer_json(), {{"add_bos_token", false}});
  EXPECT_EQ(without->encode_for_model("ab"), (Ids{kSpAb}));
}

TEST(TokenizerMetaspaceBpe, UnsupportedComponentsAreUserErrorsNamingFileAndComponent) {
  const auto expect_error = [](const json& j, const std::string& part) {
    const std::string message = load_error(j);
    EXPECT_NE(message.find("tokenizer.json"), std::string::npos) << message;
    EXPECT_NE(message.find(part), std::string::npos) << message;
  };
  json j = llama_style_tokenizer_json();
  j["normalizer"]["normalizers"].push_back({{"type", "Lowercase"}});
  expect_error(j, "normalizer 'Lowercase'");

  j = llama_style_tokenizer_json();
  j["normalizer"]["normalizers"][1]["pattern"] = {{"Regex", " +"}};
  expect_error(j, "'Replace'");

  j = llama_style_tokenizer_json();
  j["pre_tokenizer"] = {{"type", "Whitespace"}};
  expect_error(j, "pre_tokenizer 'Whitespace'");

  j = llama_style_tokenizer_json();
  j["decoder"]["decoders"].push_back({{"type", "WordPiece"}});
  expect_error(j, "decoder 'WordPiece'");

  j = metaspace_layout("sometimes", false);
  expect_error(j, "prepend_scheme 'sometimes'");

  j = llama_style_tokenizer_json();
  j["model"]["type"] = "Unigram";
  expect_error(j, "model type 'Unigram'");

  j = llama_style_tokenizer_json();
  j["model"]["dropout"] = 0.1;
  expect_error(j, "dropout");

  j = llama_style_tokenizer_json();
  j["model"]["unk_token"] = "<nope>";
  expect_error(j, "<nope>");

  j = llama_style_tokenizer_json();
  j["post_processor"] = {{"type", "BertProcessing"}};
  expect_error(j, "post_processor 'BertProcessing'");

  j = llama_style_tokenizer_json();
  j["post_processor"]["single"].push_back({{"SpecialToken", {{"id", "</x>"}, {"type_id", 0}}}});
  expect_error(j, "'</x>'");
}

}  // namespace
