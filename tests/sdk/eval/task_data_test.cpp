#include "llm/eval/task_data.hpp"

#include <gtest/gtest.h>

#include <fstream>

#include "llm/error.hpp"
#include "support/test_support.hpp"

namespace llm {
namespace {

TEST(HarnessDocumentOrder, ReproducesPythonRandom42Shuffle) {
  // source_index order of the golden details (random.Random(42).shuffle of 10 and 3 docs).
  EXPECT_EQ(harness_document_order(10, -1),
            (std::vector<std::size_t>{7, 3, 2, 8, 5, 6, 9, 4, 0, 1}));
  EXPECT_EQ(harness_document_order(3, -1), (std::vector<std::size_t>{1, 0, 2}));
  EXPECT_EQ(harness_document_order(10, 3), (std::vector<std::size_t>{7, 3, 2}));
  EXPECT_EQ(harness_document_order(10, 50).size(), 10u);
}

TEST(PythonRandom, FirstOutputsMatchCPython) {
  // random.Random(42).getrandbits(32) x3 in CPython.
  PythonRandom rnd(42);
  EXPECT_EQ(rnd.next_uint32(), 2746317213u);
  EXPECT_EQ(rnd.next_uint32(), 478163327u);
  EXPECT_EQ(rnd.next_uint32(), 107420369u);
}

void write(const std::filesystem::path& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

std::string error_of(const std::filesystem::path& path) {
  try {
    read_task_jsonl(path);
  } catch (const UserError& e) {
    return e.what();
  }
  return "";
}

TEST(ReadTaskJsonl, ReportsMissingEmptyAndMalformedFilesWithLocation) {
  test::TempDir dir;
  EXPECT_NE(error_of(dir.path() / "absent.jsonl").find("absent.jsonl: task data file not found"),
            std::string::npos);
  write(dir.path() / "empty.jsonl", "\n  \n");
  EXPECT_NE(error_of(dir.path() / "empty.jsonl").find("empty.jsonl: no records"),
            std::string::npos);
  write(dir.path() / "bad.jsonl", "{\"a\": 1}\n{\"a\": \n");
  EXPECT_NE(error_of(dir.path() / "bad.jsonl").find("bad.jsonl:2: not valid JSON"),
            std::string::npos);
  write(dir.path() / "list.jsonl", "[1, 2]\n");
  EXPECT_NE(error_of(dir.path() / "list.jsonl").find("list.jsonl:1: expected a JSON object"),
            std::string::npos);
}

TEST(ReadTaskJsonl, FieldErrorsNameTheRecordAndKey) {
  test::TempDir dir;
  write(dir.path() / "t.jsonl", "{\"context\": 3}\n");
  const auto records = read_task_jsonl(dir.path() / "t.jsonl");
  ASSERT_EQ(records.size(), 1u);
  try {
    record_string(records[0], "context");
    FAIL() << "expected a UserError";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("t.jsonl:1: field 'context' must be a string"),
              std::string::npos);
  }
  EXPECT_THROW(record_field(records[0], "completion"), UserError);
}

}  // namespace
}  // namespace llm
