#include "llm/train/metrics.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>

#include "llm/json_file.hpp"
#include "support/test_support.hpp"

namespace {

namespace fs = std::filesystem;
using llm::test::read_file_bytes;
using llm::test::TempDir;

llm::StepMetrics row(int64_t step) {
  llm::StepMetrics m;
  m.step = step;
  m.epoch = 0.5 * static_cast<double>(step);
  m.loss = 2.0;
  m.lr = 1e-3;
  return m;
}

void append_raw(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::app | std::ios::binary);
  out << bytes;
}

size_t lines_in(const std::string& text) {
  return static_cast<size_t>(std::count(text.begin(), text.end(), '\n'));
}

TEST(MetricsWriter, FreshRunWritesHeaderAndOneLinePerStep) {
  TempDir dir;
  {
    llm::MetricsWriter writer(dir.path(), std::nullopt);
    writer.write(row(1));
    writer.write(row(2));
  }
  const auto csv = read_file_bytes(dir.path() / "metrics.csv");
  EXPECT_EQ(csv.rfind("step,epoch,loss,", 0), 0u) << csv;
  EXPECT_EQ(lines_in(csv), 3u) << csv;
  EXPECT_EQ(lines_in(read_file_bytes(dir.path() / "metrics.jsonl")), 2u);
}

// What a crash mid-append leaves (a torn last row), then a resume from the checkpoint at step 2:
// rows after the checkpoint and the torn row are dropped, new rows follow on lines of their own.
TEST(MetricsWriter, ResumeDropsRowsAfterTheCheckpointAndATornLastRow) {
  TempDir dir;
  {
    llm::MetricsWriter writer(dir.path(), std::nullopt);
    for (int64_t step = 1; step <= 3; ++step) writer.write(row(step));
  }
  append_raw(dir.path() / "metrics.csv", "4,2,1.9");
  append_raw(dir.path() / "metrics.jsonl", "{\"step\": 4, \"epo");
  {
    llm::MetricsWriter writer(dir.path(), int64_t{2});
    writer.write(row(3));
  }
  const auto csv = read_file_bytes(dir.path() / "metrics.csv");
  EXPECT_EQ(lines_in(csv), 4u) << csv;  // header, 1, 2, 3
  EXPECT_EQ(csv.find("4,2,1.9"), std::string::npos) << csv;
  EXPECT_NE(csv.find("\n3,1.5,2,"), std::string::npos) << csv;
  const auto jsonl = read_file_bytes(dir.path() / "metrics.jsonl");
  EXPECT_EQ(lines_in(jsonl), 3u) << jsonl;
  EXPECT_EQ(jsonl.find("epo\n"), std::string::npos) << jsonl;
  std::istringstream lines(jsonl);
  std::string line;
  while (std::getline(lines, line)) EXPECT_TRUE(llm::Json::accept(line)) << line;
}

TEST(MetricsWriter, ResumeWithoutEarlierFilesStartsFresh) {
  TempDir dir;
  {
    llm::MetricsWriter writer(dir.path(), int64_t{5});
    writer.write(row(6));
  }
  EXPECT_EQ(lines_in(read_file_bytes(dir.path() / "metrics.csv")), 2u);
}

}  // namespace
