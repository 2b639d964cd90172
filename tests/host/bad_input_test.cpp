// Every file of the bad-input corpus (tests/data/bad) through the real binary: exit code 2 and one
// printable line naming what was wrong. The sanitizer build runs this suite too
// (scripts/test-sanitize.sh), so "no crash" includes "no ASan/UBSan report".
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <string>
#include <vector>

#include "support/test_support.hpp"

namespace {

namespace fs = std::filesystem;
using llm::test::run_llmhost;

struct BadInputCase {
  std::string name;  // gtest-safe
  fs::path source;   // the file or directory under tests/data/bad
  std::string kind;  // safetensors, checkpoints, configs, tokenizers, datasets
};

fs::path bad_dir() { return llm::test::data_dir() / "bad"; }

std::string test_name(const std::string& kind, const fs::path& file) {
  std::string name = kind + "_" + file.filename().string();
  std::replace_if(
      name.begin(), name.end(), [](unsigned char c) { return !std::isalnum(c); }, '_');
  return name;
}

std::vector<BadInputCase> corpus() {
  std::vector<BadInputCase> cases;
  for (const char* kind : {"safetensors", "checkpoints", "configs", "tokenizers", "datasets"}) {
    const fs::path dir = bad_dir() / kind;
    if (!fs::is_directory(dir)) continue;
    std::vector<fs::path> entries;
    for (const auto& entry : fs::directory_iterator(dir)) entries.push_back(entry.path());
    std::sort(entries.begin(), entries.end());
    for (const auto& entry : entries) cases.push_back({test_name(kind, entry), entry, kind});
  }
  return cases;
}

void copy_files(const fs::path& from, const fs::path& to, const std::vector<std::string>& names) {
  for (const auto& name : names) fs::copy_file(from / name, to / name);
}

// The llmhost command that reads `bad`, set up in `work` (a good checkpoint around the bad part).
std::vector<std::string> command_for(const BadInputCase& c, const fs::path& work) {
  const fs::path pythia = llm::test::data_dir() / "tiny-pythia";
  const fs::path llama = llm::test::data_dir() / "tiny-llama";
  const fs::path checkpoint = work / "checkpoint";
  fs::create_directories(checkpoint);
  const std::vector<std::string> generate = {"--task",         "generate", "--checkpoint_dir",
                                             checkpoint.string(), "--prompt", "Hello",
                                             "--max_new_tokens", "1"};
  if (c.kind == "safetensors") {
    copy_files(pythia, checkpoint, {"config.json", "tokenizer.json", "tokenizer_config.json"});
    fs::copy_file(c.source, checkpoint / "model.safetensors");
    return generate;
  }
  if (c.kind == "checkpoints") {
    fs::copy(c.source, checkpoint, fs::copy_options::recursive);
    copy_files(pythia, checkpoint, {"config.json", "tokenizer.json", "tokenizer_config.json"});
    return generate;
  }
  if (c.kind == "configs") {
    copy_files(llama, checkpoint, {"model.safetensors", "tokenizer.model"});
    fs::copy_file(c.source, checkpoint / "config.json");
    return generate;
  }
  if (c.kind == "tokenizers") {
    fs::copy_file(c.source, checkpoint / "tokenizer.json");
    return {"--task", "tokenize", "--checkpoint_dir", checkpoint.string(), "--text", "Hello"};
  }
  // datasets: dolly-*.jsonl and alpaca-*.json
  const std::string plugin = c.source.filename().string().rfind("alpaca", 0) == 0 ? "alpaca"
                                                                                  : "dolly";
  return {"--task",          "prepare",      "--plugin",          plugin,
          "--data_file",     c.source.string(), "--checkpoint_dir", pythia.string(),
          "--destination_dir", (work / "prepared").string()};
}

class BadInput : public ::testing::TestWithParam<BadInputCase> {};

TEST_P(BadInput, ExitsTwoWithOnePrintableErrorLineAndWritesNothing) {
  const BadInputCase& c = GetParam();
  llm::test::TempDir work;
  const auto result = run_llmhost(command_for(c, work.path()));
  EXPECT_EQ(result.exit_code, 2) << c.source << "\n" << result.err;
  ASSERT_FALSE(result.err.empty()) << c.source;
  EXPECT_EQ(std::count(result.err.begin(), result.err.end(), '\n'), 1)
      << "expected one line:\n" << result.err;
  EXPECT_EQ(result.err.rfind("llmhost: error: ", 0), 0u) << result.err;
  EXPECT_LE(result.err.size(), 2000u) << "a hostile file must not flood the terminal";
  EXPECT_TRUE(std::none_of(result.err.begin(), result.err.end() - 1,
                           [](unsigned char ch) { return ch < 0x20 && ch != '\t'; }))
      << "control characters in: " << result.err;
  EXPECT_FALSE(fs::exists(work.path() / "prepared" / "manifest.json"));
}

INSTANTIATE_TEST_SUITE_P(Corpus, BadInput, ::testing::ValuesIn(corpus()),
                         [](const ::testing::TestParamInfo<BadInputCase>& info) {
                           return info.param.name;
                         });

TEST(BadInputCorpus, CoversEveryKindOfBadFile) {
  std::vector<std::string> kinds;
  for (const auto& c : corpus()) {
    if (std::find(kinds.begin(), kinds.end(), c.kind) == kinds.end()) kinds.push_back(c.kind);
  }
  EXPECT_EQ(kinds, (std::vector<std::string>{"safetensors", "checkpoints", "configs",
                                             "tokenizers", "datasets"}));
  EXPECT_GE(corpus().size(), 40u);
}

}  // namespace
