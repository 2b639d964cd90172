#include <gtest/gtest.h>

#include <fstream>

#include "llm/error.hpp"
#include "plugin_registry.hpp"
#include "support/test_support.hpp"

namespace {

std::shared_ptr<llm::Dataset> alpaca(llmhost::PluginRegistry& registry) {
  registry.load_directories({llm::test::plugin_dir()});
  return registry.dataset("alpaca");
}

TEST(AlpacaDataset, ReadsThePublishedArray) {
  llmhost::PluginRegistry registry;
  const auto result =
      alpaca(registry)->read(llm::test::data_dir() / "datasets/alpaca-sample.json", {});
  ASSERT_EQ(result.examples.size(), 400u);
  EXPECT_EQ(result.examples[0].instruction, "Reverse the letters of the word.");
  EXPECT_EQ(result.examples[0].input, "garden");
  EXPECT_EQ(result.examples[0].output, "nedrag");
}

TEST(AlpacaDataset, BadRecordIsAUserErrorNamingFileAndRecord) {
  llm::test::TempDir dir;
  const auto file = dir.path() / "alpaca.json";
  std::ofstream(file)
      << R"([{"instruction": "a", "input": "", "output": "b"}, {"instruction": 3}])";
  llmhost::PluginRegistry registry;
  try {
    alpaca(registry)->read(file, {});
    FAIL() << "expected a UserError";
  } catch (const llm::UserError& e) {
    EXPECT_NE(std::string(e.what()).find(file.string() + ": record 2"), std::string::npos)
        << e.what();
  }
  llm::DatasetReadOptions skip;
  skip.skip_bad_records = true;
  EXPECT_EQ(alpaca(registry)->read(file, skip).skipped_records, 1);
}

TEST(AlpacaDataset, TruncatedFileIsAUserError) {
  llm::test::TempDir dir;
  const auto file = dir.path() / "alpaca.json";
  std::ofstream(file) << R"([{"instruction": "a", "input": "", "outp)";
  llmhost::PluginRegistry registry;
  EXPECT_THROW(alpaca(registry)->read(file, {}), llm::UserError);
}

}  // namespace
