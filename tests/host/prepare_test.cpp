#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <fstream>

#include "llm/json_file.hpp"
#include "llm/train/prepared_data.hpp"
#include "support/test_support.hpp"

namespace {

namespace fs = std::filesystem;
using llm::test::run_llmhost;

llm::test::CommandResult prepare(const fs::path& data_file, const fs::path& out,
                                 std::vector<std::string> extra = {}) {
  std::vector<std::string> args{"--task",
                                "prepare",
                                "--plugin",
                                "dolly",
                                "--data_file",
                                data_file.string(),
                                "--checkpoint_dir",
                                (llm::test::data_dir() / "tiny-pythia-trained").string(),
                                "--destination_dir",
                                out.string()};
  args.insert(args.end(), extra.begin(), extra.end());
  return run_llmhost(args);
}

TEST(PrepareTask, SplitsTheDollySample360To40WithMaskedPromptsAndEos) {
  llm::test::TempDir out;
  const auto result = prepare(llm::test::data_dir() / "datasets/dolly-sample.jsonl", out.path());
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const auto manifest = llm::read_json_file(out.path() / "manifest.json");
  EXPECT_EQ(manifest["counts"]["train"], 360);  // floor(0.9 * 400), as random_split
  EXPECT_EQ(manifest["counts"]["test"], 40);
  EXPECT_EQ(manifest["mask_inputs"], true);
  EXPECT_EQ(manifest["max_seq_length"], 256);  // the model's max_position_embeddings
  const auto data = llm::read_prepared_dataset(out.path(), 1024);
  for (int64_t i = 0; i < data.train.size(); ++i) {
    ASSERT_LT(data.train.prompt_length(i), data.train.length(i)) << "a response follows";
    if (data.train.length(i) < 256) {
      ASSERT_EQ(data.train.ids(i)[-1].item<int32_t>(), 0) << "EOS (<|endoftext|> = 0) ends it";
    }
  }
  // Every record lands in exactly one split.
  std::vector<int64_t> all;
  for (const auto* split : {&data.train, &data.test}) {
    for (int64_t i = 0; i < split->size(); ++i)
      all.push_back(split->source_index[i].item<int64_t>());
  }
  std::sort(all.begin(), all.end());
  EXPECT_EQ(std::unique(all.begin(), all.end()), all.end());
  EXPECT_EQ(all.size(), 400u);
}

TEST(PrepareTask, SameSeedSameSplitOtherSeedOtherSplit) {
  llm::test::TempDir a, b, c;
  const auto file = llm::test::data_dir() / "datasets/dolly-sample.jsonl";
  ASSERT_EQ(prepare(file, a.path(), {"--max_seq_length", "64"}).exit_code, 0);
  ASSERT_EQ(prepare(file, b.path(), {"--max_seq_length", "64"}).exit_code, 0);
  ASSERT_EQ(prepare(file, c.path(), {"--max_seq_length", "64", "--seed", "7"}).exit_code, 0);
  const auto split_a = llm::read_prepared_split(a.path() / "test.safetensors", 0);
  const auto split_b = llm::read_prepared_split(b.path() / "test.safetensors", 0);
  const auto split_c = llm::read_prepared_split(c.path() / "test.safetensors", 0);
  EXPECT_TRUE(torch::equal(split_a.source_index, split_b.source_index));
  EXPECT_FALSE(torch::equal(split_a.source_index, split_c.source_index));
  EXPECT_LE(split_a.offsets.diff().max().item<int64_t>(), 64) << "truncated to max_seq_length";
}

TEST(PrepareTask, CorruptJsonlLineExitsTwoNamingFileAndLine) {
  llm::test::TempDir dir;
  const auto file = dir.path() / "dolly.jsonl";
  std::ofstream(file) << R"({"instruction": "a", "context": "", "response": "b"})"
                      << "\n"
                      << R"({"instruction": "a", "context": "", "respo)"
                      << "\n";
  const auto result = prepare(file, dir.path() / "out");
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_NE(result.err.find(file.string() + ":2:"), std::string::npos) << result.err;
  EXPECT_FALSE(fs::exists(dir.path() / "out" / "manifest.json"));
}

TEST(PrepareTask, EmptyDatasetExitsTwo) {
  llm::test::TempDir dir;
  const auto file = dir.path() / "empty.jsonl";
  std::ofstream(file) << "\n";
  const auto result = prepare(file, dir.path() / "out");
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_NE(result.err.find("empty"), std::string::npos) << result.err;
}

}  // namespace
