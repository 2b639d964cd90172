// Unusable tokenizer files and ids: one-line UserErrors naming the file, never a crash.
#include <gtest/gtest.h>

#include "llm/error.hpp"
#include "llm/tokenizer.hpp"
#include "sdk/tokenizer/tokenizer_test_files.hpp"

namespace {

namespace fs = std::filesystem;
using llm::test::data_dir;

// Loads `dir` and returns the UserError message ("" when loading succeeded).
std::string load_error(const fs::path& dir) {
  try {
    llm::load_tokenizer(dir);
  } catch (const llm::UserError& e) {
    return e.what();
  }
  return "";
}

bool mentions(const std::string& message, const std::string& part) {
  return message.find(part) != std::string::npos;
}

std::string load_error_for_json(const nlohmann::json& tokenizer_json) {
  llm::test::TempDir dir;
  llm::test::write_json(dir.path() / "tokenizer.json", tokenizer_json);
  return load_error(dir.path());
}

TEST(TokenizerBadInput, MissingDirectoryIsNamed) {
  const std::string message = load_error("/nonexistent/checkpoint");
  EXPECT_TRUE(mentions(message, "/nonexistent/checkpoint")) << message;
}

TEST(TokenizerBadInput, DirectoryWithoutTokenizerNamesBothFiles) {
  llm::test::TempDir dir;
  const std::string message = load_error(dir.path());
  EXPECT_TRUE(mentions(message, dir.path().string())) << message;
  EXPECT_TRUE(mentions(message, "tokenizer.json")) << message;
  EXPECT_TRUE(mentions(message, "tokenizer.model")) << message;
}

TEST(TokenizerBadInput, MalformedTokenizerJsonIsNamed) {
  llm::test::TempDir dir;
  llm::test::write_text(dir.path() / "tokenizer.json", "{\"model\": {\"vocab\": ");
  const std::string message = load_error(dir.path());
  EXPECT_TRUE(mentions(message, "tokenizer.json")) << message;
  EXPECT_TRUE(mentions(message, "malformed JSON")) << message;
}

TEST(TokenizerBadInput, NonBpeModelTypeIsRejected) {
  nlohmann::json tokenizer_json = llm::test::pythia_tokenizer_json();
  tokenizer_json["model"]["type"] = "WordPiece";
  const std::string message = load_error_for_json(tokenizer_json);
  EXPECT_TRUE(mentions(message, "tokenizer.json")) << message;
  EXPECT_TRUE(mentions(message, "WordPiece")) << message;
  EXPECT_TRUE(mentions(message, "BPE")) << message;
}

TEST(TokenizerBadInput, UnsupportedPreTokenizerIsRejected) {
  nlohmann::json tokenizer_json = llm::test::pythia_tokenizer_json();
  tokenizer_json["pre_tokenizer"] = {{"type", "Whitespace"}};
  const std::string message = load_error_for_json(tokenizer_json);
  EXPECT_TRUE(mentions(message, "pre_tokenizer")) << message;
}

TEST(TokenizerBadInput, MetaspaceTokenizerJsonDefersToTokenizerModel) {
  // Llama checkpoints ship both files; the sentencepiece model is the one this SDK runs. Alone,
  // this tokenizer.json (a Metaspace pre-tokenizer with a ByteLevel decoder) is refused.
  nlohmann::json metaspace = llm::test::pythia_tokenizer_json();
  metaspace["pre_tokenizer"] = {{"type", "Metaspace"}, {"replacement", "\xE2\x96\x81"}};
  llm::test::TempDir dir;
  llm::test::write_json(dir.path() / "tokenizer.json", metaspace);
  EXPECT_TRUE(mentions(load_error(dir.path()), "decoder 'ByteLevel'"));
  fs::copy_file(data_dir() / "tiny-llama" / "tokenizer.model", dir.path() / "tokenizer.model");
  EXPECT_EQ(llm::load_tokenizer(dir.path())->kind(), "sentencepiece");
}

TEST(TokenizerBadInput, MergeReferringToUnknownTokenIsRejected) {
  nlohmann::json tokenizer_json = llm::test::pythia_tokenizer_json();
  tokenizer_json["model"]["merges"].push_back({"no-such-token", "x"});
  const std::string message = load_error_for_json(tokenizer_json);
  EXPECT_TRUE(mentions(message, "tokenizer.json")) << message;
  EXPECT_TRUE(mentions(message, "no-such-token")) << message;
}

TEST(TokenizerBadInput, MalformedMergeEntryIsRejected) {
  nlohmann::json tokenizer_json = llm::test::pythia_tokenizer_json();
  tokenizer_json["model"]["merges"].push_back(42);
  EXPECT_TRUE(mentions(load_error_for_json(tokenizer_json), "merge #"));
}

TEST(TokenizerBadInput, VocabIdsOutsideTheIdRangeAreRejectedWithoutAllocating) {
  for (const nlohmann::json& bad_id :
       {nlohmann::json(int64_t{1} << 40), nlohmann::json(-1), nlohmann::json("7")}) {
    nlohmann::json tokenizer_json = llm::test::pythia_tokenizer_json();
    tokenizer_json["model"]["vocab"]["zzz"] = bad_id;
    const std::string message = load_error_for_json(tokenizer_json);
    EXPECT_TRUE(mentions(message, "zzz")) << message;
  }
  // The largest legal id is accepted and does not size any buffer.
  nlohmann::json tokenizer_json = llm::test::pythia_tokenizer_json();
  tokenizer_json["model"]["vocab"]["zzz"] = (int64_t{1} << 31) - 1;
  llm::test::TempDir dir;
  llm::test::write_json(dir.path() / "tokenizer.json", tokenizer_json);
  EXPECT_EQ(llm::load_tokenizer(dir.path())->vocab_size(), int64_t{1} << 31);
}

TEST(TokenizerBadInput, CorruptTokenizerModelIsNamed) {
  llm::test::TempDir dir;
  llm::test::write_text(dir.path() / "tokenizer.model", "this is not a protobuf \x01\x02\xff");
  const std::string message = load_error(dir.path());
  EXPECT_TRUE(mentions(message, "tokenizer.model")) << message;
}

TEST(TokenizerBadInput, MalformedTokenizerConfigIsNamed) {
  llm::test::TempDir dir;
  fs::copy_file(data_dir() / "tiny-llama" / "tokenizer.model", dir.path() / "tokenizer.model");
  llm::test::write_text(dir.path() / "tokenizer_config.json", "{\"add_bos_token\": tru");
  EXPECT_TRUE(mentions(load_error(dir.path()), "tokenizer_config.json"));
  llm::test::write_json(dir.path() / "tokenizer_config.json", {{"add_bos_token", "yes"}});
  EXPECT_TRUE(mentions(load_error(dir.path()), "add_bos_token"));
}

TEST(TokenizerBadInput, DecodingIdsOutsideTheVocabularyIsAUserError) {
  for (const char* checkpoint : {"tiny-pythia", "tiny-llama"}) {
    const auto tokenizer = llm::load_tokenizer(data_dir() / checkpoint);
    EXPECT_THROW(tokenizer->decode({5, tokenizer->vocab_size()}), llm::UserError) << checkpoint;
    EXPECT_THROW(tokenizer->decode({-1}), llm::UserError) << checkpoint;
  }
}

}  // namespace
