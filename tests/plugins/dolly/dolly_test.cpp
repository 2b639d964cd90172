#include <gtest/gtest.h>

#include <fstream>

#include "llm/error.hpp"
#include "plugin_registry.hpp"
#include "support/test_support.hpp"

namespace {

std::shared_ptr<llm::Dataset> dolly(llmhost::PluginRegistry& registry) {
  registry.load_directories({llm::test::plugin_dir()});
  return registry.dataset("dolly");
}

TEST(DollyDataset, ReadsThePublishedSchemaWithContextAsInput) {
  llmhost::PluginRegistry registry;
  const auto result =
      dolly(registry)->read(llm::test::data_dir() / "datasets/dolly-sample.jsonl", {});
  ASSERT_EQ(result.examples.size(), 400u);
  EXPECT_EQ(result.skipped_records, 0);
  const auto& first = result.examples.front();
  EXPECT_EQ(first.instruction, "How many boxes did the warehouse receive in total?");
  EXPECT_EQ(first.input.rfind("A warehouse received 42 boxes", 0), 0u);
  EXPECT_EQ(first.output, "It received 108 boxes in total.");
  EXPECT_EQ(first.source_line, 1);
}

TEST(DollyDataset, CorruptLineIsAUserErrorNamingFileAndLine) {
  llm::test::TempDir dir;
  const auto file = dir.path() / "dolly.jsonl";
  std::ofstream(file) << R"({"instruction": "a", "context": "", "response": "b"})"
                      << "\n"
                      << R"({"instruction": "a", "context": "")"
                      << "\n";
  llmhost::PluginRegistry registry;
  try {
    dolly(registry)->read(file, {});
    FAIL() << "expected a UserError";
  } catch (const llm::UserError& e) {
    EXPECT_NE(std::string(e.what()).find(file.string() + ":2:"), std::string::npos) << e.what();
  }
}

TEST(DollyDataset, SkipBadRecordsCountsThem) {
  llm::test::TempDir dir;
  const auto file = dir.path() / "dolly.jsonl";
  std::ofstream(file) << R"({"instruction": "a", "context": "", "response": "b"})"
                      << "\n"
                      << "not json\n"
                      << R"({"instruction": "a", "response": "b"})"
                      << "\n";
  llmhost::PluginRegistry registry;
  llm::DatasetReadOptions options;
  options.skip_bad_records = true;
  const auto result = dolly(registry)->read(file, options);
  EXPECT_EQ(result.examples.size(), 1u);
  EXPECT_EQ(result.skipped_records, 2);
}

}  // namespace
