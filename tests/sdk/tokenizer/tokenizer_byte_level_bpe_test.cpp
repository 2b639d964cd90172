// Byte-level BPE behaviour beyond the golden strings: merge spellings, added tokens, Unicode
// handling, the prefix-space option, and speed with the per-word cache.
#include <iostream>
#include <thread>

#include <gtest/gtest.h>

#include "llm/tokenizer.hpp"
#include "sdk/tokenizer/tokenizer_test_files.hpp"

namespace {

namespace fs = std::filesystem;
using llm::test::data_dir;

std::unique_ptr<llm::Tokenizer> load_from_json(const llm::test::TempDir& dir,
                                               const nlohmann::json& tokenizer_json) {
  llm::test::write_json(dir.path() / "tokenizer.json", tokenizer_json);
  return llm::load_tokenizer(dir.path());
}

TEST(TokenizerByteLevelBpe, MergesAsStringsAndAsPairsGiveTheSameIds) {
  nlohmann::json pairs_form = llm::test::pythia_tokenizer_json();
  nlohmann::json strings_form = pairs_form;
  auto& merges = strings_form["model"]["merges"];
  ASSERT_TRUE(merges.at(0).is_array()) << "the fixture spells merges as pairs";
  for (auto& merge : merges)
    merge = merge[0].get<std::string>() + " " + merge[1].get<std::string>();

  llm::test::TempDir pairs_dir, strings_dir;
  const auto from_pairs = load_from_json(pairs_dir, pairs_form);
  const auto from_strings = load_from_json(strings_dir, strings_form);
  for (const auto& golden : llm::test::golden_tokenizer_cases("bpe_tiny_pythia")) {
    const std::vector<int64_t> expected = golden.at("ids");
    EXPECT_EQ(from_pairs->encode(golden.at("text")), expected);
    EXPECT_EQ(from_strings->encode(golden.at("text")), expected);
  }
}

// Merges in the ["left", "right"] spelling (a braced list alone would read as a JSON object).
nlohmann::json pairs(const std::vector<std::pair<std::string, std::string>>& merges) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& [left, right] : merges) out.push_back(nlohmann::json::array({left, right}));
  return out;
}

// A hand-made three-letter vocabulary whose merge order decides the split of "abc".
nlohmann::json tiny_tokenizer_json(const nlohmann::json& merges) {
  return {{"version", "1.0"},
          {"added_tokens", nlohmann::json::array()},
          {"normalizer", nullptr},
          {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}}},
          {"decoder", {{"type", "ByteLevel"}}},
          {"model",
           {{"type", "BPE"},
            {"vocab", {{"a", 0}, {"b", 1}, {"c", 2}, {"ab", 3}, {"bc", 4}, {"abc", 5}}},
            {"merges", merges}}}};
}

TEST(TokenizerByteLevelBpe, LowerRankedMergeWinsInEitherSpelling) {
  llm::test::TempDir ab_first_pairs, ab_first_strings, bc_first_pairs, bc_first_strings;
  const std::vector<int64_t> ab_then_c{3, 2}, a_then_bc{0, 4};
  EXPECT_EQ(load_from_json(ab_first_pairs, tiny_tokenizer_json(pairs({{"a", "b"}, {"b", "c"}})))
                ->encode("abc"),
            ab_then_c);
  EXPECT_EQ(
      load_from_json(ab_first_strings, tiny_tokenizer_json(nlohmann::json::array({"a b", "b c"})))
          ->encode("abc"),
      ab_then_c);
  EXPECT_EQ(load_from_json(bc_first_pairs, tiny_tokenizer_json(pairs({{"b", "c"}, {"a", "b"}})))
                ->encode("abc"),
            a_then_bc);
  EXPECT_EQ(
      load_from_json(bc_first_strings, tiny_tokenizer_json(nlohmann::json::array({"b c", "a b"})))
          ->encode("abc"),
      a_then_bc);
  llm::test::TempDir chained;
  EXPECT_EQ(load_from_json(chained, tiny_tokenizer_json(nlohmann::json::array({"a b", "ab c"})))
                ->encode("abc"),
            std::vector<int64_t>{5});
}

TEST(TokenizerByteLevelBpe, NormalizedAddedTokenIsSplitOutBeforeBpe) {
  // GPT-NeoX ships runs of spaces as added, normalized, non-special tokens.
  nlohmann::json tokenizer_json = llm::test::pythia_tokenizer_json();
  tokenizer_json["added_tokens"].push_back({{"id", 1024},
                                            {"content", "   "},
                                            {"special", false},
                                            {"normalized", true},
                                            {"lstrip", false},
                                            {"rstrip", false},
                                            {"single_word", false}});
  llm::test::TempDir dir;
  const auto tokenizer = load_from_json(dir, tokenizer_json);
  const auto reference = llm::load_tokenizer(data_dir() / "tiny-pythia");
  EXPECT_EQ(tokenizer->vocab_size(), 1025);
  std::vector<int64_t> expected = reference->encode("a");
  expected.push_back(1024);
  const std::vector<int64_t> tail = reference->encode("b");
  expected.insert(expected.end(), tail.begin(), tail.end());
  EXPECT_EQ(tokenizer->encode("a   b"), expected);
  EXPECT_EQ(tokenizer->decode(tokenizer->encode("a   b")), "a   b");
  EXPECT_EQ(tokenizer->decode(tokenizer->encode("a   b"), /*skip_special_tokens=*/true), "a   b");
}

TEST(TokenizerByteLevelBpe, InputIsNfcNormalisedFirst) {
  const auto tokenizer = llm::load_tokenizer(data_dir() / "tiny-pythia");
  EXPECT_EQ(tokenizer->encode("cafe\xCC\x81"), tokenizer->encode("caf\xC3\xA9"));  // e + U+0301
}

TEST(TokenizerByteLevelBpe, InvalidUtf8InputIsReadAsReplacementCharacters) {
  const auto tokenizer = llm::load_tokenizer(data_dir() / "tiny-pythia");
  EXPECT_EQ(tokenizer->encode("a\xFF\xFE b"), tokenizer->encode("a\xEF\xBF\xBD\xEF\xBF\xBD b"));
}

TEST(TokenizerByteLevelBpe, DecodingAPartialCharacterGivesReplacementCharacter) {
  const auto tokenizer = llm::load_tokenizer(data_dir() / "tiny-pythia");
  const std::vector<int64_t> ids = tokenizer->encode("\xE6\x9D\xB1");  // 東: 3 byte tokens here
  ASSERT_GE(ids.size(), 2u);
  EXPECT_EQ(tokenizer->decode({ids.front()}), "\xEF\xBF\xBD");
  EXPECT_EQ(tokenizer->decode({ids.front(), ids.front()}), "\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(tokenizer->decode(ids), "\xE6\x9D\xB1");
}

TEST(TokenizerByteLevelBpe, AddPrefixSpaceMakesTheFirstWordLookMidSentence) {
  nlohmann::json tokenizer_json = llm::test::pythia_tokenizer_json();
  tokenizer_json["pre_tokenizer"]["add_prefix_space"] = true;
  llm::test::TempDir dir;
  const auto tokenizer = load_from_json(dir, tokenizer_json);
  const auto reference = llm::load_tokenizer(data_dir() / "tiny-pythia");
  EXPECT_EQ(tokenizer->encode("Hello world"), reference->encode(" Hello world"));
  EXPECT_EQ(tokenizer->encode(" Hello"), reference->encode(" Hello"));  // no second space
}

TEST(TokenizerByteLevelBpe, TokenizerConfigAddPrefixSpaceOverridesThePreTokenizer) {
  llm::test::TempDir dir;
  fs::copy_file(data_dir() / "tiny-pythia" / "tokenizer.json", dir.path() / "tokenizer.json");
  llm::test::write_json(dir.path() / "tokenizer_config.json", {{"add_prefix_space", true}});
  const auto reference = llm::load_tokenizer(data_dir() / "tiny-pythia");
  EXPECT_EQ(llm::load_tokenizer(dir.path())->encode("Hello"), reference->encode(" Hello"));
}

TEST(TokenizerByteLevelBpe, TokenTextIsTheVocabularySpelling) {
  const auto tokenizer = llm::load_tokenizer(data_dir() / "tiny-pythia");
  const std::vector<int64_t> ids = tokenizer->encode(" ");
  ASSERT_EQ(ids.size(), 1u);
  EXPECT_EQ(tokenizer->token_text(ids[0]), "\xC4\xA0");  // "Ġ"
  EXPECT_EQ(tokenizer->token_text(0), "<|endoftext|>");
}

TEST(TokenizerByteLevelBpe, ConcurrentEncodingGivesTheSameIds) {
  const auto tokenizer = llm::load_tokenizer(data_dir() / "tiny-pythia");
  const nlohmann::json cases = llm::test::golden_tokenizer_cases("bpe_tiny_pythia");
  std::vector<std::thread> threads;
  std::vector<int> mismatches(4, 0);
  for (size_t t = 0; t < mismatches.size(); ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 50; ++round) {
        for (const auto& golden : cases) {
          if (tokenizer->encode(golden.at("text")) !=
              golden.at("ids").get<std::vector<int64_t>>()) {
            ++mismatches[t];
          }
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(mismatches, std::vector<int>(4, 0));
}

// Many distinct words through one tokenizer (its merge cache grows and is reused): every record
// still round-trips. Speed is bench's business (bench/NOTES.md), not a timed unit test's.
TEST(TokenizerByteLevelBpe, ThousandsOfDistinctRecordsRoundTrip) {
  const auto tokenizer = llm::load_tokenizer(data_dir() / "tiny-pythia");
  size_t tokens = 0;
  for (int i = 0; i < 5000; ++i) {
    const std::string record = "Below is an instruction that describes a task. Record " +
                               std::to_string(i) + ": What is " + std::to_string(i * 7) + " plus " +
                               std::to_string(i % 13) + "?\n\n### Response:\nThe answer is " +
                               std::to_string(i * 7 + i % 13) + ".";
    const auto ids = tokenizer->encode(record);
    tokens += ids.size();
    ASSERT_EQ(tokenizer->decode(ids), record) << i;
  }
  EXPECT_GT(tokens, 5000u * 20);
}

TEST(TokenizerByteLevelBpe, LongWordWithoutSpacesEncodesAndRoundTrips) {
  const auto tokenizer = llm::load_tokenizer(data_dir() / "tiny-pythia");
  std::string word;
  for (int i = 0; i < 20000; ++i) word += static_cast<char>('a' + (i * 7) % 26);
  const std::vector<int64_t> ids = tokenizer->encode(word);
  EXPECT_LT(ids.size(), word.size());
  EXPECT_EQ(tokenizer->decode(ids), word);
}

}  // namespace
