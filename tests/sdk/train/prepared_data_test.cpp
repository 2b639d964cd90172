#include "llm/train/prepared_data.hpp"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "llm/error.hpp"
#include "llm/safetensors.hpp"
#include "support/test_support.hpp"

namespace {

TEST(PreparedData, WriteThenReadGivesTheSameSamples) {
  llm::test::TempDir dir;
  const auto split = llm::PreparedSplit::from_samples({{1, 2, 3}, {4, 5}}, {1, 2}, {7, 9});
  llm::write_prepared_split(dir.path() / "train.safetensors", split);
  const auto read = llm::read_prepared_split(dir.path() / "train.safetensors", 10);
  ASSERT_EQ(read.size(), 2);
  EXPECT_TRUE(torch::equal(read.ids(0), torch::tensor({1, 2, 3}, torch::kInt32)));
  EXPECT_TRUE(torch::equal(read.ids(1), torch::tensor({4, 5}, torch::kInt32)));
  EXPECT_EQ(read.prompt_length(1), 2);
  EXPECT_EQ(read.source_index[1].item<int64_t>(), 9);
}

TEST(PreparedData, TokenIdsOutsideTheVocabularyAreAUserError) {
  llm::test::TempDir dir;
  llm::write_prepared_split(dir.path() / "s.safetensors",
                            llm::PreparedSplit::from_samples({{1, 2000}}, {1}, {1}));
  EXPECT_THROW(llm::read_prepared_split(dir.path() / "s.safetensors", 1024), llm::UserError);
}

TEST(PreparedData, InconsistentOffsetsAreAUserError) {
  llm::test::TempDir dir;
  llm::write_safetensors(dir.path() / "bad.safetensors",
                         {{"input_ids", torch::tensor({1, 2, 3}, torch::kInt32)},
                          {"offsets", torch::tensor({0, 5}, torch::kInt64)},
                          {"prompt_lengths", torch::tensor({1}, torch::kInt32)}});
  try {
    llm::read_prepared_split(dir.path() / "bad.safetensors", 0);
    FAIL() << "expected a UserError";
  } catch (const llm::UserError& e) {
    EXPECT_NE(std::string(e.what()).find("bad.safetensors"), std::string::npos);
  }
}

TEST(PreparedData, MissingDataDirNamesTheFlag) {
  try {
    llm::read_prepared_dataset("/nonexistent/prepared", 0);
    FAIL() << "expected a UserError";
  } catch (const llm::UserError& e) {
    EXPECT_NE(std::string(e.what()).find("--data_dir"), std::string::npos);
  }
}

}  // namespace
